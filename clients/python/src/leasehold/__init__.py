"""A Python client for Leasehold: work leases, version-checked items and per-day counters
over HTTP, doing the careful parts for its caller.

- **Two flavours, one surface**: :class:`Client` (blocking, thread-safe) and
  :class:`AsyncClient` (asyncio) have the same methods, in snake_case, with the same
  arguments and answers.
- **Safe to retry**: every write carries an ``Idempotency-Key`` (a UUID v4) that its
  retries reuse, so the service applies it once and replays its answer;
  :meth:`Client.with_idempotency_key` makes a handle whose writes carry a key of yours.
- **Retried when it may help**: on no answer (connection refused or broken, timeout),
  429, 502, 503 and 504, with exponential backoff and full jitter, capped, bounded in
  attempts and total time, honouring ``Retry-After`` (:class:`RetryPolicy`); never on
  another 4xx.
- **Leases that keep themselves alive**: a claim returns :class:`Lease` guards
  (:class:`AsyncLease` in asyncio) that renew in the background at a third of the lease
  time, report when the lease is lost, and give the item back when their ``with`` block
  ends without completing it.
- **Following a pool**: :meth:`Client.list_events` pages through a pool's change log;
  :meth:`Client.follow_events` follows it live over Server-Sent Events, resuming after
  the last event it yielded.
- **One error**: :class:`LeaseholdError`, whose ``code`` is one of :data:`ProblemCode`.

Answers are the API's JSON as plain dicts, typed with ``TypedDict`` (see ``_types``).
"""

from ._async import AsyncClient, AsyncEventStream, AsyncLease
from ._calls import UNSET
from ._errors import PROBLEM_CODES, Current, LeaseholdError, ProblemCode
from ._retry import RetryPolicy
from ._sync import Client, EventStream, Lease
from ._types import (
    AddedItems,
    CounterDraw,
    CounterValue,
    Data,
    Event,
    EventPage,
    EventType,
    Followed,
    Item,
    ItemPage,
    ItemState,
    LeaseInfo,
    LeasePage,
    NewItem,
    Pool,
    PoolConfig,
    PoolCounts,
    PoolList,
    PoolSettings,
    PoolStats,
    PoolSummary,
    PoolUsage,
    TenantInfo,
    TenantLimits,
    Trimmed,
)
from ._version import __version__

__all__ = [
    "__version__",
    "Client",
    "AsyncClient",
    "Lease",
    "AsyncLease",
    "EventStream",
    "AsyncEventStream",
    "RetryPolicy",
    "LeaseholdError",
    "ProblemCode",
    "PROBLEM_CODES",
    "Current",
    "UNSET",
    "AddedItems",
    "CounterDraw",
    "CounterValue",
    "Data",
    "Event",
    "EventPage",
    "EventType",
    "Followed",
    "Item",
    "ItemPage",
    "ItemState",
    "LeaseInfo",
    "LeasePage",
    "NewItem",
    "Pool",
    "PoolConfig",
    "PoolCounts",
    "PoolList",
    "PoolSettings",
    "PoolStats",
    "PoolSummary",
    "PoolUsage",
    "TenantInfo",
    "TenantLimits",
    "Trimmed",
]
