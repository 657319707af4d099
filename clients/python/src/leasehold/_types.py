"""The bodies the service answers with, and the ones the client sends, as ``TypedDict``s.

Answers are handed to the caller as the plain dictionaries the JSON decodes to: their
keys are exactly the HTTP API's (``docs/api.md``), so what a method returns *is* the
API's JSON for that answer, ready to log, store or compare. The ``TypedDict``s below only
tell the type checker which keys there are; nothing is converted or validated at run
time, and keys a newer server adds are simply there too.

Times are RFC 3339 UTC strings with milliseconds (``"2026-01-10T09:30:00.120Z"``), as the
service sends them; :class:`leasehold.Lease` also offers its expiry as a ``datetime``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict, Union

# Optional keys are declared through a ``total=False`` subclass of the required ones
# (rather than ``NotRequired``, which needs Python 3.11).

#: Any JSON value, as ``json.loads`` gives it.
JSON = Any

#: An item's data: a JSON object.
Data = Dict[str, Any]

#: Where an item is in its life.
ItemState = Literal["available", "leased", "delayed", "done", "dead"]

#: What an event records (see ``docs/api.md``, Events).
EventType = Literal[
    "added",
    "claimed",
    "renewed",
    "released",
    "completed",
    "expired",
    "delay_over",
    "assigned",
    "unassigned",
    "written",
    "requeued",
    "deleted",
    "removed",
    "paused",
    "resumed",
]


# -- Pools ------------------------------------------------------------------------------


class PoolConfig(TypedDict):
    """A pool's settings. ``keep_done_ms`` / ``keep_dead_ms`` are ``None`` for "for ever"."""

    lease_ms: int
    max_leases_per_holder: int
    max_attempts: int
    require_if_match: bool
    max_events: int
    keep_done_ms: Optional[int]
    keep_dead_ms: Optional[int]
    paused: bool


class PoolSettings(TypedDict, total=False):
    """The body of ``PUT /v1/pools/{pool}``: the settings to set; the others keep their value.

    ``keep_done_ms`` / ``keep_dead_ms`` set to ``None`` keep finished items for ever.
    """

    lease_ms: int
    max_leases_per_holder: int
    max_attempts: int
    require_if_match: bool
    max_events: int
    keep_done_ms: Optional[int]
    keep_dead_ms: Optional[int]
    paused: bool


class PoolCounts(TypedDict):
    """How many of the pool's items are in each state."""

    available: int
    leased: int
    delayed: int
    done: int
    dead: int


class PoolStats(TypedDict):
    """Grants, refusals (409/412/428) and leases reclaimed after expiry, so far."""

    claims: int
    conflicts: int
    expired: int


class PoolUsage(TypedDict):
    """What the pool uses, beside its limits (see ``docs/api.md``, Quotas)."""

    items: int
    max_items: int
    bytes: int
    max_bytes: int
    data_bytes: int
    event_bytes: int
    answer_bytes: int


class Pool(TypedDict):
    """``GET /v1/pools/{pool}`` (and ``PUT``'s answer)."""

    name: str
    config: PoolConfig
    counts: PoolCounts
    stats: PoolStats
    usage: PoolUsage
    created_at: str
    updated_at: str


class PoolSummary(TypedDict):
    """A pool as ``list_pools`` lists it."""

    name: str
    counts: PoolCounts


class PoolList(TypedDict):
    """One page of ``GET /v1/pools``; ``next_after`` is ``None`` on the last page."""

    pools: List[PoolSummary]
    next_after: Optional[str]


class TenantLimits(TypedDict):
    """The write limits of the caller's tenant."""

    max_pools_per_tenant: int
    max_items_per_pool: int
    max_pool_bytes: int


class TenantInfo(TypedDict):
    """``GET /v1/tenant``: the tenant the API key belongs to, its pool count and limits."""

    tenant: str
    pools: int
    limits: TenantLimits


# -- Items ------------------------------------------------------------------------------


class _NewItemId(TypedDict):
    id: str


class NewItem(_NewItemId, total=False):
    """An item to add: its ``id`` and optionally its priority (higher first), data (a JSON
    object of at most 64 KiB), and a schedule (``available_at``, RFC 3339, or
    ``delay_ms``; the item is ``delayed`` until then)."""

    priority: int
    data: Data
    available_at: str
    delay_ms: int


class AddedItems(TypedDict):
    """What ``add_items`` did: the ids it created, and those that were there already
    (left untouched)."""

    created: List[str]
    existing: List[str]


class _ItemFields(TypedDict):
    id: str
    pool: str
    state: ItemState
    priority: int
    version: int
    holder: Optional[str]
    lease_expires_at: Optional[str]
    attempts: int
    data: Data
    created_at: str
    updated_at: str


class Item(_ItemFields, total=False):
    """An item as the service answers it. ``token`` is there only in the answer of an
    assignment; ``available_at`` only for a ``delayed`` item (when it becomes available)."""

    token: int
    available_at: str


class ItemPage(TypedDict):
    """One page of ``list_items``; ``next_cursor`` is ``None`` on the last page."""

    items: List[Item]
    next_cursor: Optional[str]


# -- Leases -----------------------------------------------------------------------------


class LeaseInfo(TypedDict):
    """A lease as the API answers a claim or a renewal (the canonical lease).

    :class:`leasehold.Lease` is the guard that keeps one alive; its ``info`` is this.
    ``lease_expires_at`` is ``None`` for a lease without expiry (``lease_ms`` 0)."""

    id: str
    token: int
    version: int
    holder: str
    lease_expires_at: Optional[str]
    priority: int
    attempts: int
    data: Data


class LeasePage(TypedDict):
    """One page of ``list_leases``; ``next_cursor`` is ``None`` on the last page."""

    leases: List[LeaseInfo]
    next_cursor: Optional[str]


# -- Counters ---------------------------------------------------------------------------


class _CounterDrawFields(TypedDict):
    name: str
    period: Optional[str]
    values: List[int]


class CounterDraw(_CounterDrawFields, total=False):
    """``next_counter``'s answer: the values drawn (contiguous), the period they belong to
    (``"YYYY-MM-DD"``, or ``None`` for ``period="none"``), and, only when a ``format`` was
    given, the formatted ``ids``."""

    ids: List[str]


class CounterValue(TypedDict):
    """``get_counter``'s answer: the last value issued in the period (0 if none)."""

    name: str
    period: Optional[str]
    value: int


# -- Events -----------------------------------------------------------------------------


class Event(TypedDict):
    """One entry of a pool's change log (see ``docs/api.md``, Events). ``item``, ``state``
    and ``version`` are ``None`` for changes to the pool itself (``paused``,
    ``resumed``)."""

    id: str
    type: EventType
    item: Optional[str]
    state: Optional[ItemState]
    version: Optional[int]
    holder: Optional[str]
    token: Optional[int]
    at: str
    lease_expires_at: Optional[str]


class EventPage(TypedDict):
    """One page of ``list_events``: pass ``next_after`` as ``after`` for the next one.
    ``trimmed`` is true when events after ``after`` were dropped by the pool's cap before
    they were read."""

    events: List[Event]
    next_after: Optional[str]
    trimmed: bool


class Trimmed:
    """What an event stream yields when events after the last one yielded were dropped by
    the pool's cap (``max_events``) before they could be sent: the events that follow
    start at the oldest one kept, and those in between are lost."""

    __slots__ = ()

    type: Literal["trimmed"] = "trimmed"

    def __repr__(self) -> str:
        return "Trimmed()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trimmed)

    def __hash__(self) -> int:
        return hash(Trimmed)


#: What an event stream yields: the next event, or word that some were trimmed.
Followed = Union[Event, Trimmed]

__all__ = [
    "JSON",
    "Data",
    "ItemState",
    "EventType",
    "PoolConfig",
    "PoolSettings",
    "PoolCounts",
    "PoolStats",
    "PoolUsage",
    "Pool",
    "PoolSummary",
    "PoolList",
    "TenantLimits",
    "TenantInfo",
    "NewItem",
    "AddedItems",
    "Item",
    "ItemPage",
    "LeaseInfo",
    "LeasePage",
    "CounterDraw",
    "CounterValue",
    "Event",
    "EventPage",
    "Trimmed",
    "Followed",
]
