"""The one exception every call raises, :class:`LeaseholdError`, and the problem codes.

A call fails in one of three ways, all raised as :class:`LeaseholdError`:

- the service answered with a problem (``application/problem+json``): ``status`` and
  ``code`` say which, ``detail`` says it in words, and ``field``, ``current``, ``limit``,
  ``quota``, ``usage`` and ``retry_after`` carry what the problem has;
- no answer came (the connection failed or broke, or the attempt timed out):
  ``status`` and ``code`` are ``None``, and the ``httpx`` exception is the ``__cause__``;
- the request was retried until the retry policy's attempts or time ran out:
  ``gave_up`` is true, and the rest describes the last attempt.

``outcome_unknown`` tells whether a write may have been applied although the call failed
(no answer, a 5xx, or retries given up on after one of those); sending it again with the
same ``Idempotency-Key`` (``client.with_idempotency_key(error.idempotency_key)``) applies
it at most once.
"""

from __future__ import annotations

import json
from typing import Any, Dict, FrozenSet, Literal, Optional, TypedDict, cast

#: Every problem ``code`` the service answers with (``crates/wire/src/problem.rs``), and
#: ``"unknown"`` for a code this client does not know (from a newer server) or an error
#: answer that is not a problem at all (a proxy's HTML page).
ProblemCode = Literal[
    "invalid_request",  # 400: `field` names the field (or header, or path) that broke a rule
    "unauthorized",  # 401: a missing, malformed, unknown or revoked API key
    "not_found",  # 404: no such pool, item, counter or route
    "method_not_allowed",  # 405
    "already_leased",  # 409: the item is leased by another holder
    "lease_lost",  # 409: expired, released, reassigned, or not the current token
    "version_conflict",  # 409: expected_version does not match
    "holder_at_capacity",  # 409: the holder has max_leases_per_holder leases (`limit`)
    "pool_paused",  # 409: claims grant nothing until the pool is resumed
    "invalid_state",  # 409: the item is done, dead (or delayed, for a claim)
    "idempotency_key_reused",  # 409: the key was used for a different request
    "quota_exceeded",  # 409: a limit would be passed (`quota`, `limit`, `usage`)
    "precondition_failed",  # 412: If-Match / If-None-Match did not hold
    "payload_too_large",  # 413
    "unsupported_media_type",  # 415
    "precondition_required",  # 428: the pool requires a precondition on writes
    "rate_limited",  # 429: over the tenant's rate limit (`retry_after`)
    "backend_unavailable",  # 503: Redis could not be reached; a write's outcome is unknown
    "durability_timeout",  # 503: too few replicas acknowledged in time; outcome unknown
    "request_timeout",  # 408: the body did not arrive in time
    "internal",  # 500
    "unknown",  # a code this client does not know, or an answer that is not a problem
]

#: The codes above, as a set (to check a string against at run time).
PROBLEM_CODES: FrozenSet[str] = frozenset(
    (
        "invalid_request",
        "unauthorized",
        "not_found",
        "method_not_allowed",
        "already_leased",
        "lease_lost",
        "version_conflict",
        "holder_at_capacity",
        "pool_paused",
        "invalid_state",
        "idempotency_key_reused",
        "quota_exceeded",
        "precondition_failed",
        "payload_too_large",
        "unsupported_media_type",
        "precondition_required",
        "rate_limited",
        "backend_unavailable",
        "durability_timeout",
        "request_timeout",
        "internal",
        "unknown",
    )
)


class Current(TypedDict):
    """What the item looked like when a write was refused (409, 412): its version (0 for
    an item that does not exist), state and holder, so a caller can say "now assigned to
    Jane" and try again from fresh state."""

    version: int
    state: Optional[str]
    holder: Optional[str]


def problem_code(value: object) -> ProblemCode:
    """``value`` as a :data:`ProblemCode`: itself if this client knows it, else
    ``"unknown"``."""
    if isinstance(value, str) and value in PROBLEM_CODES:
        return cast(ProblemCode, value)
    return "unknown"


class LeaseholdError(Exception):
    """A call that failed: see the module's description for the three ways.

    Attributes:
        status: the HTTP status of the (last) answer; ``None`` when no answer came.
        code: the problem's stable code (match on this); ``None`` when no answer came.
        detail: words for people (not stable); for no answer, what went wrong.
        field: for ``invalid_request``, the field, header or path part that broke a rule.
        current: for 409 and 412, the item's ``version``, ``state`` and ``holder`` now.
        limit: for ``holder_at_capacity`` and ``quota_exceeded``, the limit's value.
        quota: for ``quota_exceeded``, the limit's name.
        usage: for ``quota_exceeded``, what is used of it.
        retry_after: for 429 and 503, how long the service asked to wait before calling
            again, in **seconds** (a float; the ``Retry-After`` header's value).
        outcome_unknown: whether a write may have been applied although the call failed.
        gave_up: whether the retry policy ran out (attempts or time) on a retryable outcome.
        attempts: how many attempts the call made (1 when the first was final).
        idempotency_key: the ``Idempotency-Key`` every attempt of a write carried.
        problem: the problem body as the service sent it (``None`` without one).
    """

    status: Optional[int]
    code: Optional[ProblemCode]
    detail: str
    field: Optional[str]
    current: Optional[Current]
    limit: Optional[int]
    quota: Optional[str]
    usage: Optional[int]
    retry_after: Optional[float]
    outcome_unknown: bool
    gave_up: bool
    attempts: int
    idempotency_key: Optional[str]
    problem: Optional[Dict[str, Any]]

    def __init__(
        self,
        detail: str,
        *,
        status: Optional[int] = None,
        code: Optional[ProblemCode] = None,
        field: Optional[str] = None,
        current: Optional[Current] = None,
        limit: Optional[int] = None,
        quota: Optional[str] = None,
        usage: Optional[int] = None,
        retry_after: Optional[float] = None,
        outcome_unknown: bool = False,
        gave_up: bool = False,
        attempts: int = 1,
        idempotency_key: Optional[str] = None,
        problem: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.current = current
        self.limit = limit
        self.quota = quota
        self.usage = usage
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown
        self.gave_up = gave_up
        self.attempts = attempts
        self.idempotency_key = idempotency_key
        self.problem = problem
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.status is None:
            text = f"no answer from Leasehold: {self.detail}"
        else:
            text = f"{self.status} {self.code}"
            if self.field:
                text += f" ({self.field})"
            if self.detail:
                text += f": {self.detail}"
        if self.gave_up:
            text = f"gave up after {self.attempts} attempts: {text}"
        return text

    @classmethod
    def from_problem(
        cls,
        status: int,
        body: bytes,
        *,
        retry_after: Optional[float],
        **outcome: Any,
    ) -> LeaseholdError:
        """The error an answer with a non-2xx ``status`` and this body amounts to. A body
        that is not a problem becomes code ``"unknown"`` with the start of the body as its
        detail."""
        problem: Optional[Dict[str, Any]] = None
        try:
            decoded = json.loads(body)
            if isinstance(decoded, dict) and "code" in decoded:
                problem = decoded
        except ValueError:
            pass
        if problem is None:
            text = body[:200].decode("utf-8", "replace")
            return cls(
                text, status=status, code="unknown", retry_after=retry_after, **outcome
            )
        current = problem.get("current")
        return cls(
            str(problem.get("detail") or ""),
            status=status,
            code=problem_code(problem.get("code")),
            field=_optional_str(problem.get("field")),
            current=cast(Current, current) if isinstance(current, dict) else None,
            limit=_optional_int(problem.get("limit")),
            quota=_optional_str(problem.get("quota")),
            usage=_optional_int(problem.get("usage")),
            retry_after=retry_after,
            problem=problem,
            **outcome,
        )


def _optional_str(value: object) -> Optional[str]:
    return value if isinstance(value, str) else None


def _optional_int(value: object) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


__all__ = ["ProblemCode", "PROBLEM_CODES", "Current", "LeaseholdError", "problem_code"]
