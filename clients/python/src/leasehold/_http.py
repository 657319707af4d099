"""The sending core that both clients share, free of any I/O of its own.

- :class:`Call`: one request, by path, with its body encoded once, so every attempt sends
  the same bytes (the service fingerprints them to tell a retry from a reuse of a key).
- :class:`Answer` / :class:`NoAnswer`: what one attempt came back with.
- :class:`Attempts`: the retry loop's state and decisions (which outcome is retried, how
  long to wait, when to give up, what error a failure amounts to). The sync and async
  clients each run the loop with their own way of sending and sleeping.
- :func:`path`, :func:`etag` and the encoding helpers.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlencode

import httpx

from ._errors import LeaseholdError
from ._retry import RetryPolicy

#: The header that makes a retried write safe.
IDEMPOTENCY_KEY = "Idempotency-Key"

#: The longest a long-poll claim waits (``wait_ms`` up to 30,000), in seconds. An event
#: stream may stay silent for the client's timeout plus this before it counts as broken
#: (the service sends a keep-alive comment every 15 s).
LONGEST_WAIT = 30.0

#: How long connecting may take at most, in seconds (less if the client's timeout is).
CONNECT_TIMEOUT = 5.0

#: The longest wait before a retry, in seconds (about 31 years): a longer one (a huge
#: ``Retry-After`` under a policy without a time bound) is not waited for, the request
#: gives up at once. It keeps every wait within what ``time.sleep`` and
#: ``threading.Event.wait`` accept.
LONGEST_RETRY_WAIT = 1e9

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Call:
    """One request to send, and perhaps send again.

    Attributes:
        method: the HTTP method.
        path: the path and query, already percent-encoded, starting with ``/``.
        body: the body's bytes, encoded once for every attempt.
        content_type: the body's media type.
        headers: further headers (preconditions, ``Last-Event-ID``).
        extra_time: seconds added to the attempt's timeout and to the retry policy's total
            time: a long-poll claim's wait, spent on the server before it answers.
        idempotency_key: the key to send with a write instead of a fresh one.
    """

    method: str
    path: str
    body: Optional[bytes] = None
    content_type: str = "application/json"
    headers: Tuple[Tuple[str, str], ...] = ()
    extra_time: float = 0.0
    idempotency_key: Optional[str] = None

    def __post_init__(self) -> None:
        # Checked before anything is sent: a header value with a line break (or any other
        # control or non-ASCII character) would otherwise fail inside the transport, and
        # look like a request that got no answer.
        for name, value in self.headers:
            check_header_value(name, value)
        if self.idempotency_key is not None:
            check_idempotency_key(self.idempotency_key)

    @property
    def is_write(self) -> bool:
        """Whether the method changes state, and so carries an ``Idempotency-Key``."""
        return self.method not in _READS

    def keyed(self, key: Optional[str]) -> Call:
        """This call carrying ``key`` (if given) as its ``Idempotency-Key``."""
        if key is None or not self.is_write:
            return self
        return Call(
            self.method,
            self.path,
            self.body,
            self.content_type,
            self.headers,
            self.extra_time,
            key,
        )


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, whatever its status, with the whole body read."""

    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retry_after(self) -> Optional[float]:
        """``Retry-After`` in seconds (the only form Leasehold sends), if any."""
        return retry_after(self.headers)

    @property
    def replayed(self) -> bool:
        """Whether the service replayed a stored answer (``Idempotent-Replayed: true``)."""
        value = str(self.headers.get("idempotent-replayed", ""))
        return value.strip().lower() == "true"

    def json(self) -> Any:
        """The body as JSON (``None`` for an empty body, as a 204 has)."""
        if not self.content:
            return None
        try:
            return json.loads(self.content)
        except ValueError as e:
            raise LeaseholdError(
                f"the answer is not JSON: {e}", status=self.status, code=None
            ) from e


@dataclass(frozen=True)
class NoAnswer:
    """No answer: the connection failed or broke, or the attempt timed out."""

    error: Exception


Outcome = Union[Answer, NoAnswer]

# No answer, but retrying may help: the network or the service did not answer in time.
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# No answer, but the request never left: a write cannot have been applied.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def retry_after(headers: httpx.Headers) -> Optional[float]:
    """``Retry-After`` in seconds, if the headers have it as a number."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def is_retryable(outcome: Outcome) -> bool:
    """Whether sending again may help: no answer, or 429, 502, 503, 504 (the service, or a
    load balancer in front of it, could not take the request now). Never another 4xx."""
    if isinstance(outcome, NoAnswer):
        return isinstance(outcome.error, _RETRYABLE_ERRORS)
    return outcome.status in (429, 502, 503, 504)


def is_unknown(outcome: Outcome) -> bool:
    """Whether a write may have been applied although this attempt does not say so: no
    answer (unless the connection was never made), or a 5xx. A 429 is answered before
    anything is done."""
    if isinstance(outcome, NoAnswer):
        return not isinstance(outcome.error, _NEVER_SENT)
    return outcome.status >= 500


class RetryCounter:
    """How many retries a client (and the handles sharing its connections) has made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self) -> None:
        with self._lock:
            self._count += 1

    @property
    def count(self) -> int:
        return self._count


@dataclass
class Attempts:
    """The state of one request's retry loop, from its first attempt to its last answer.

    The loop, in either flavour::

        attempts = Attempts(call, policy, timeout, counter)
        while True:
            outcome = send(call, attempts.headers(), attempts.attempt_timeout())
            wait = attempts.next_wait(outcome)
            if wait is None:
                return attempts.finish(outcome)   # the 2xx answer, or raises
            sleep(wait)
    """

    call: Call
    policy: RetryPolicy
    timeout: float
    counter: RetryCounter
    started: float = field(default_factory=time.monotonic)
    key: Optional[str] = None
    count: int = 0
    earlier_unknown: bool = False
    gave_up: bool = False

    def __post_init__(self) -> None:
        # A long-poll claim waits on the server: its attempts, and the whole request, get
        # that much more time.
        if self.call.extra_time > 0:
            self.timeout += self.call.extra_time
            self.policy = self.policy.with_max_elapsed(
                self.policy.max_elapsed + self.call.extra_time
            )
        if self.call.is_write:
            self.key = self.call.idempotency_key or str(uuid.uuid4())

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def attempt_timeout(self) -> float:
        """How long the next attempt may take: the call's timeout, bounded by the time the
        policy has left."""
        left = self.policy.max_elapsed - self.elapsed()
        return max(min(self.timeout, left), 0.001)

    def headers(self, base: Mapping[str, str]) -> Dict[str, str]:
        """The headers of an attempt: the client's, the call's, and the key of a write
        (the same on every attempt)."""
        headers = dict(base)
        if self.call.body is not None:
            headers["Content-Type"] = self.call.content_type
        for name, value in self.call.headers:
            headers[name] = value
        if self.key is not None:
            headers[IDEMPOTENCY_KEY] = self.key
        return headers

    def next_wait(self, outcome: Outcome) -> Optional[float]:
        """Counts ``outcome`` as an attempt, and says how long to wait before the next
        one, or ``None`` when this one is final (a success, a refusal, or the policy's
        attempts or time used up)."""
        self.count += 1
        if isinstance(outcome, Answer) and outcome.ok:
            return None
        if not is_retryable(outcome):
            return None
        if self.count >= self.policy.max_attempts:
            self.gave_up = True
            return None
        after = outcome.retry_after if isinstance(outcome, Answer) else None
        wait = self.policy.delay(self.count - 1, after)
        if wait > LONGEST_RETRY_WAIT or self.elapsed() + wait >= self.policy.max_elapsed:
            self.gave_up = True
            return None
        self.earlier_unknown = self.earlier_unknown or is_unknown(outcome)
        self.counter.add()
        return wait

    def finish(self, outcome: Outcome) -> Answer:
        """The 2xx answer the final ``outcome`` is, or raises the error it amounts to."""
        if isinstance(outcome, Answer) and outcome.ok:
            return outcome
        raise self.error(outcome)

    def error(self, outcome: Outcome) -> LeaseholdError:
        """The error a final, failed ``outcome`` amounts to."""
        unknown = self.call.is_write and (
            is_unknown(outcome) or (self.gave_up and self.earlier_unknown)
        )
        common: Dict[str, Any] = dict(
            outcome_unknown=unknown,
            gave_up=self.gave_up,
            attempts=self.count,
            idempotency_key=self.key,
        )
        if isinstance(outcome, NoAnswer):
            error = LeaseholdError(describe(outcome.error), **common)
            error.__cause__ = outcome.error
            return error
        return LeaseholdError.from_problem(
            outcome.status, outcome.content, retry_after=outcome.retry_after, **common
        )


def describe(error: BaseException) -> str:
    """An exception in a few words."""
    text = str(error)
    name = type(error).__name__
    return f"{name}: {text}" if text else name


def timeouts(seconds: float, *, read: Optional[float] = None) -> httpx.Timeout:
    """The ``httpx`` timeouts of one attempt: ``seconds`` for each phase (connecting at
    most :data:`CONNECT_TIMEOUT`), and ``read`` for each read, when given."""
    return httpx.Timeout(
        seconds,
        connect=min(seconds, CONNECT_TIMEOUT),
        read=seconds if read is None else read,
    )


# -- Paths and bodies -------------------------------------------------------------------

_PLAIN = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~:@"
)


def _segment(segment: str) -> str:
    """One path segment, percent-encoded so that a name can never reach another route
    (not even ``.`` or ``..``)."""
    raw = segment.encode("utf-8")
    dots = all(byte == ord(".") for byte in raw)
    out: List[str] = []
    for byte in raw:
        if byte in _PLAIN or (byte == ord(".") and not dots):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def path(*segments: str, query: Iterable[Tuple[str, Optional[object]]] = ()) -> str:
    """A path from its segments, each percent-encoded as one segment, with a query of the
    pairs whose value is not ``None``."""
    encoded = "".join("/" + _segment(s) for s in segments)
    pairs = [(k, _query_value(v)) for k, v in query if v is not None]
    if pairs:
        encoded += "?" + urlencode(pairs)
    return encoded


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode(body: Any) -> bytes:
    """A JSON body, compact. ``NaN`` and infinities are refused (JSON has none)."""
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


def present(**fields: Any) -> Dict[str, Any]:
    """The fields whose value is not ``None`` (absent means "the default" to the
    service)."""
    return {name: value for name, value in fields.items() if value is not None}


def etag(value: Union[int, str]) -> str:
    """An ``If-Match`` value: an ETag as ``get_item`` gives it (``'"3"'``) is sent as it is;
    a version number (``3``) is quoted."""
    if isinstance(value, bool):
        raise TypeError("if_match takes an ETag string or a version number")
    if isinstance(value, int):
        return f'"{value}"'
    return value


def json_call(
    method: str,
    url_path: str,
    body: Any,
    *,
    content_type: str = "application/json",
    headers: Sequence[Tuple[str, str]] = (),
    extra_time: float = 0.0,
) -> Call:
    """A call with a JSON body."""
    return Call(
        method,
        url_path,
        encode(body),
        content_type,
        tuple(headers),
        extra_time,
    )


def preconditions(
    *,
    if_match: Optional[Union[int, str]] = None,
    if_none_match: Optional[str] = None,
    lease_token: Optional[int] = None,
) -> List[Tuple[str, str]]:
    """The precondition headers of an item write."""
    headers: List[Tuple[str, str]] = []
    if if_match is not None:
        headers.append(("If-Match", etag(if_match)))
    if if_none_match is not None:
        headers.append(("If-None-Match", if_none_match))
    if lease_token is not None:
        headers.append(("Lease-Token", str(lease_token)))
    return headers


_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")


def check_header_value(name: str, value: object, *, secret: bool = False) -> str:
    """``value`` if it can be sent as the value of header ``name``: printable ASCII
    (``0x20``..``0x7e``). Raises :class:`ValueError` (before any request) for anything
    else: a CR or LF (which would split the header), another control character, or a
    non-ASCII character. A ``secret`` value is not repeated in the error."""
    if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
        shown = "" if secret else f" {value!r}"
        raise ValueError(
            f"invalid {name} header value{shown}: only printable ASCII characters, "
            "no line breaks or other control characters"
        )
    return value


def check_idempotency_key(key: object) -> str:
    """``key`` if it is a valid ``Idempotency-Key`` (1 to 128 visible ASCII characters, as
    the service requires); else raises :class:`ValueError`."""
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValueError(
            f"invalid Idempotency-Key {key!r}: it is 1 to 128 visible ASCII characters"
        )
    return key


def clean_base_url(base_url: str) -> str:
    """The base URL without its trailing ``/`` (a path prefix is kept); refused unless it
    is ``http(s)`` without a query."""
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host or url.query:
        raise ValueError(f"base URL {base_url!r}: must be http(s)://host[:port][/prefix]")
    return base_url.rstrip("/")


def client_headers(api_key: Optional[str], user_agent: str) -> Dict[str, str]:
    """The headers every request carries."""
    headers = {"User-Agent": user_agent, "Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = check_header_value(
            "Authorization", f"Bearer {api_key}", secret=True
        )
    return headers


__all__ = [
    "IDEMPOTENCY_KEY",
    "LONGEST_WAIT",
    "LONGEST_RETRY_WAIT",
    "check_header_value",
    "check_idempotency_key",
    "Call",
    "Answer",
    "NoAnswer",
    "Outcome",
    "Attempts",
    "RetryCounter",
    "path",
    "etag",
    "encode",
    "present",
    "json_call",
    "preconditions",
    "retry_after",
    "timeouts",
]
