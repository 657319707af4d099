"""Lease timing that both lease guards share: how long a lease runs, and when it ends by
the holder's own (monotonic) clock.

By the contract a lease is lost the instant its time has passed, by Redis's clock. The
holder cannot read that clock, so it counts on its own: ``lease_ms`` from when the call
that granted (or renewed) the lease was *sent*, which errs on the early side. Where the
claim named no lease time (the pool's applies), the time left is read from the answer's
``lease_expires_at`` against this machine's wall clock, which trusts the two clocks to
agree.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Optional

from ._types import LeaseInfo

#: The least time the one renewal that decides a lease of unknown age gets, in seconds.
MIN_DECIDING = 0.1


def parse_time(text: str) -> datetime:
    """An RFC 3339 UTC time as the service writes it (``2026-01-10T09:30:00.120Z``)."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def named(lease_ms: Optional[int]) -> Optional[int]:
    """A lease time the claim named (0 is "none": the pool's, or no expiry)."""
    return lease_ms if lease_ms else None


def lease_time(info: LeaseInfo, lease_ms: Optional[int]) -> Optional[float]:
    """The lease time in seconds: ``lease_ms`` when the claim named one, else what is left
    of the lease by the wall clock. ``None`` for a lease without expiry."""
    expires_at = info.get("lease_expires_at")
    if expires_at is None:
        return None
    ms = named(lease_ms)
    if ms is not None:
        return ms / 1000.0
    left = parse_time(expires_at) - datetime.now(timezone.utc)
    return max(left.total_seconds(), 0.0)


def local_expiry(
    info: LeaseInfo, lease_ms: Optional[int], sent_at: float
) -> Optional[float]:
    """When the lease runs out by the holder's monotonic clock: ``lease_ms`` after
    ``sent_at`` (when the granting call was sent) when the claim named its lease time,
    else by ``lease_expires_at``. ``None`` for a lease without expiry."""
    duration = lease_time(info, lease_ms)
    if duration is None:
        return None
    start = sent_at if named(lease_ms) is not None else time.monotonic()
    return start + duration


def deciding_time(info: LeaseInfo, lease_ms: Optional[int]) -> float:
    """How long the one renewal that decides a lease of unknown age may take, retries
    included: a third of its lease time, so that no answer is not reported as a loss
    too soon."""
    return max((lease_time(info, lease_ms) or 0.0) / 3.0, MIN_DECIDING)


#: Answers that say "not now" rather than "no": 408 (the body came too slowly: nothing was
#: done) and 429 (over the rate limit), like the 5xx answers, never lose a lease.
_NOT_NOW = frozenset({408, 429})


def is_refusal(status: Optional[int], gave_up: bool) -> bool:
    """Whether a failed renewal means the lease is no longer the holder's: the service
    refused it (a 4xx that is final: 409 ``lease_lost``, 404, ...), rather than not
    answering, being unavailable or over its rate limit (429, 502-504, also when the
    retry policy allows no retries), which leaves the outcome unknown."""
    return status is not None and status < 500 and status not in _NOT_NOW and not gave_up


#: The longest a renewing thread waits at once, in seconds (it waits again for the
#: rest): well within what ``threading.Condition.wait`` accepts, whatever the lease time.
LONGEST_GUARD_WAIT = 86400.0


def pause_after_failure(left: float, retry_after: Optional[float]) -> float:
    """How long a guard waits after a renewal failed without a refusal, with ``left``
    seconds of the lease to go: a quarter of that (between 10 ms and 1 s); at least the
    service's ``Retry-After`` when that ends before the lease does; when it ends later,
    until a quarter of the time left, for a last try (the service rounds ``Retry-After``
    up to whole seconds). Never past the lease's end."""
    left = max(left, 0.0)
    pause = min(max(left / 4.0, 0.01), 1.0)
    if retry_after is not None:
        if retry_after < left:
            pause = max(pause, retry_after)
        else:
            pause = max(pause, left * 0.75)
    return min(pause, left)


__all__ = [
    "parse_time",
    "lease_time",
    "local_expiry",
    "deciding_time",
    "is_refusal",
    "pause_after_failure",
    "MIN_DECIDING",
    "LONGEST_GUARD_WAIT",
]
