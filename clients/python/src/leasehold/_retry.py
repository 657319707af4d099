"""When to send a request again: exponential backoff with full jitter, capped, bounded in
attempts and in total time, and ``Retry-After`` honoured whenever the service sends it.

Which outcomes are retried at all is fixed (no answer, 429, 502, 503, 504; never another
4xx, since the same request would be refused again): a :class:`RetryPolicy` only says how
often and for how long.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Optional


@dataclass(frozen=True)
class RetryPolicy:
    """How a request is retried. All times are in seconds.

    Attributes:
        max_attempts: attempts in all, the first included (1: never retry).
        base_delay: the backoff ceiling before the first retry; it doubles with each retry.
        max_delay: the largest backoff ceiling (a longer ``Retry-After`` is still honoured).
        max_elapsed: the most time one request may take, from its first attempt to its last
            answer: no attempt starts, and none runs, past it. A ``Retry-After`` that would
            end past it is not waited for: the request gives up at once with that answer.
            (``math.inf`` bounds a request by its attempts alone; a wait longer than about
            31 years, ``LONGEST_RETRY_WAIT``, still gives up at once.)

    The delays must be finite numbers (``ValueError`` otherwise).
    """

    max_attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 5.0
    max_elapsed: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not (math.isfinite(self.base_delay) and math.isfinite(self.max_delay)):
            raise ValueError("base_delay and max_delay must be finite")
        if math.isnan(self.max_elapsed):
            raise ValueError("max_elapsed must be a number")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_elapsed <= 0:
            raise ValueError("delays must not be negative, and max_elapsed must be positive")

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt, never repeated."""
        return cls(max_attempts=1)

    @classmethod
    def of(cls, retries: RetryPolicy | int) -> RetryPolicy:
        """A policy from what a client was given: a policy as it is, or a number of
        *retries* (so ``0`` is one attempt and ``4`` the default five), with the default
        delays."""
        if isinstance(retries, RetryPolicy):
            return retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError("retries must be a RetryPolicy or a number of retries >= 0")
        return cls(max_attempts=retries + 1)

    def with_max_elapsed(self, max_elapsed: float) -> RetryPolicy:
        """This policy with another total time (at least a millisecond)."""
        return replace(self, max_elapsed=max(max_elapsed, 0.001))

    def ceiling(self, retry: int) -> float:
        """The backoff ceiling before retry number ``retry`` (0 for the first retry):
        ``base_delay * 2**retry``, at most ``max_delay``."""
        return min(self.base_delay * float(1 << min(max(retry, 0), 62)), self.max_delay)

    def delay(self, retry: int, retry_after: Optional[float] = None) -> float:
        """How long to wait before retry number ``retry``: a uniformly random time up to
        the ceiling ("full jitter", so that clients that failed together do not come back
        together); or, when the service sent ``Retry-After``, that long plus a jitter of up
        to ``base_delay`` (never earlier than it asked)."""
        if retry_after is not None:
            return retry_after + random.uniform(0.0, self.base_delay)
        return random.uniform(0.0, self.ceiling(retry))


#: The default policy: 5 attempts, backoff from 0.1 s up to 5 s, at most 30 s in all.
DEFAULT_RETRIES = RetryPolicy()

__all__ = ["RetryPolicy", "DEFAULT_RETRIES"]
