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


def is_refusal(status: Optional[int], gave_up: bool) -> bool:
    """Whether a failed renewal means the lease is no longer the holder's: the service
    refused it (a 4xx that is final), rather than not answering or being unavailable."""
    return status is not None and status < 500 and not gave_up


__all__ = [
    "parse_time",
    "lease_time",
    "local_expiry",
    "deciding_time",
    "is_refusal",
    "MIN_DECIDING",
]
