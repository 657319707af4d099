"""Every endpoint as a :class:`~leasehold._http.Call`, and every answer read back.

Both clients build their requests here and read their answers here, so the sync and the
async flavour cannot drift apart: a client method is "build the call, send it (the
flavour's own way), read the answer".
"""

from __future__ import annotations

import enum
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union, cast

from ._http import Answer, Call, json_call, path, preconditions, present
from ._types import (
    AddedItems,
    CounterDraw,
    CounterValue,
    Data,
    EventPage,
    Item,
    ItemPage,
    ItemState,
    LeaseInfo,
    LeasePage,
    NewItem,
    Pool,
    PoolList,
    PoolSettings,
    TenantInfo,
)


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = "UNSET"


#: "Not given", where ``None`` means something of its own (``keep_done_ms=None`` keeps
#: done items for ever).
UNSET = Unset.UNSET

#: An ``If-Match`` value: an ETag as ``get_item`` gives it (``'"3"'``), or a version.
IfMatch = Union[int, str]


# -- Pools ------------------------------------------------------------------------------


def pool_settings(
    settings: Optional[Mapping[str, Any]],
    *,
    lease_ms: Optional[int],
    max_leases_per_holder: Optional[int],
    max_attempts: Optional[int],
    require_if_match: Optional[bool],
    max_events: Optional[int],
    keep_done_ms: Union[int, None, Unset],
    keep_dead_ms: Union[int, None, Unset],
    paused: Optional[bool],
) -> PoolSettings:
    """The body of ``PUT /v1/pools/{pool}``: ``settings`` with the keyword arguments given
    on top (``None`` is "not given", except for the keep times, where it is "for ever")."""
    body: Dict[str, Any] = dict(settings or {})
    body.update(
        present(
            lease_ms=lease_ms,
            max_leases_per_holder=max_leases_per_holder,
            max_attempts=max_attempts,
            require_if_match=require_if_match,
            max_events=max_events,
            paused=paused,
        )
    )
    if keep_done_ms is not UNSET:
        body["keep_done_ms"] = keep_done_ms
    if keep_dead_ms is not UNSET:
        body["keep_dead_ms"] = keep_dead_ms
    return cast(PoolSettings, body)


def put_pool(pool: str, settings: PoolSettings) -> Call:
    return json_call("PUT", path("v1", "pools", pool), settings)


def get_pool(pool: str) -> Call:
    return Call("GET", path("v1", "pools", pool))


def list_pools(limit: Optional[int], after: Optional[str]) -> Call:
    return Call("GET", path("v1", "pools", query=[("after", after), ("limit", limit)]))


def delete_pool(pool: str) -> Call:
    return Call("DELETE", path("v1", "pools", pool))


def tenant() -> Call:
    return Call("GET", path("v1", "tenant"))


def ready() -> Call:
    return Call("GET", path("readyz"))


# -- Items ------------------------------------------------------------------------------


def add_items(pool: str, items: Sequence[Union[NewItem, str]]) -> Call:
    listed = [{"id": item} if isinstance(item, str) else dict(item) for item in items]
    return json_call("POST", path("v1", "pools", pool, "items"), {"items": listed})


def get_item(pool: str, item: str) -> Call:
    return Call("GET", path("v1", "pools", pool, "items", item))


def put_item(
    pool: str,
    item: str,
    data: Data,
    *,
    priority: Optional[int],
    expected_version: Optional[int],
    if_match: Optional[IfMatch],
    if_none_match: Optional[str],
    lease_token: Optional[int],
) -> Call:
    body = {"data": data, **present(priority=priority, expected_version=expected_version)}
    return json_call(
        "PUT",
        path("v1", "pools", pool, "items", item),
        body,
        headers=preconditions(
            if_match=if_match, if_none_match=if_none_match, lease_token=lease_token
        ),
    )


def patch_item(
    pool: str,
    item: str,
    patch: Mapping[str, Any],
    *,
    if_match: Optional[IfMatch],
    if_none_match: Optional[str],
    lease_token: Optional[int],
) -> Call:
    return json_call(
        "PATCH",
        path("v1", "pools", pool, "items", item),
        dict(patch),
        content_type="application/merge-patch+json",
        headers=preconditions(
            if_match=if_match, if_none_match=if_none_match, lease_token=lease_token
        ),
    )


def delete_item(
    pool: str,
    item: str,
    *,
    if_match: Optional[IfMatch],
    if_none_match: Optional[str],
    lease_token: Optional[int],
) -> Call:
    headers = preconditions(
        if_match=if_match, if_none_match=if_none_match, lease_token=lease_token
    )
    return Call("DELETE", path("v1", "pools", pool, "items", item), headers=tuple(headers))


def list_items(
    pool: str,
    *,
    state: Optional[ItemState],
    holder: Optional[str],
    limit: Optional[int],
    cursor: Optional[str],
) -> Call:
    query: List[Tuple[str, Optional[object]]] = [
        ("state", state),
        ("holder", holder),
        ("limit", limit),
        ("cursor", cursor),
    ]
    return Call("GET", path("v1", "pools", pool, "items", query=query))


def assign_item(
    pool: str,
    item: str,
    holder: Optional[str],
    *,
    expected_version: Optional[int],
    if_match: Optional[IfMatch],
    lease_ms: Optional[int],
) -> Call:
    # `holder` is always sent: a string assigns, null unassigns (missing would be 400).
    body = {"holder": holder, **present(expected_version=expected_version, lease_ms=lease_ms)}
    return json_call(
        "PUT",
        path("v1", "pools", pool, "items", item, "holder"),
        body,
        headers=preconditions(if_match=if_match),
    )


def requeue_item(
    pool: str,
    item: str,
    *,
    priority: Optional[int],
    delay_ms: Optional[int],
    available_at: Optional[str],
) -> Call:
    body = present(priority=priority, delay_ms=delay_ms, available_at=available_at)
    return json_call("POST", path("v1", "pools", pool, "items", item, "requeue"), body)


# -- Leases -----------------------------------------------------------------------------


def claim_next(
    pool: str,
    *,
    holder: str,
    count: Optional[int],
    lease_ms: Optional[int],
    wait_ms: Optional[int],
    create: Optional[bool],
) -> Call:
    body = {
        "holder": holder,
        **present(count=count, lease_ms=lease_ms, wait_ms=wait_ms, create=create),
    }
    # The service waits up to `wait_ms` before it answers: the attempt's timeout, and the
    # retry policy's total time, grow by as much.
    wait = (wait_ms or 0) / 1000.0
    return json_call("POST", path("v1", "pools", pool, "claim"), body, extra_time=wait)


def claim_item(pool: str, item: str, *, holder: str, lease_ms: Optional[int]) -> Call:
    body = {"holder": holder, **present(lease_ms=lease_ms)}
    return json_call("POST", path("v1", "pools", pool, "items", item, "claim"), body)


def renew(pool: str, item: str, *, holder: str, token: int, lease_ms: Optional[int]) -> Call:
    body = {"holder": holder, "token": token, **present(lease_ms=lease_ms)}
    return json_call("POST", path("v1", "pools", pool, "items", item, "renew"), body)


def release(
    pool: str,
    item: str,
    *,
    holder: str,
    token: int,
    delay_ms: Optional[int],
    priority: Optional[int],
) -> Call:
    body = {"holder": holder, "token": token, **present(delay_ms=delay_ms, priority=priority)}
    return json_call("POST", path("v1", "pools", pool, "items", item, "release"), body)


def complete(
    pool: str, item: str, *, holder: str, token: int, data: Optional[Data]
) -> Call:
    body = {"holder": holder, "token": token, **present(data=data)}
    return json_call("POST", path("v1", "pools", pool, "items", item, "complete"), body)


def list_leases(
    pool: str, holder: str, *, limit: Optional[int], cursor: Optional[str]
) -> Call:
    query: List[Tuple[str, Optional[object]]] = [
        ("holder", holder),
        ("limit", limit),
        ("cursor", cursor),
    ]
    return Call("GET", path("v1", "pools", pool, "leases", query=query))


# -- Counters ---------------------------------------------------------------------------


def next_counter(
    name: str,
    *,
    count: Optional[int],
    period: Optional[str],
    tz: Optional[str],
    format: Optional[str],
) -> Call:
    body = present(count=count, period=period, tz=tz, format=format)
    return json_call("POST", path("v1", "counters", name, "next"), body)


def get_counter(name: str, *, period: Optional[str], tz: Optional[str]) -> Call:
    query: List[Tuple[str, Optional[object]]] = [("period", period), ("tz", tz)]
    return Call("GET", path("v1", "counters", name, query=query))


# -- Events -----------------------------------------------------------------------------


def list_events(pool: str, *, after: Optional[str], limit: Optional[int]) -> Call:
    query: List[Tuple[str, Optional[object]]] = [("after", after), ("limit", limit)]
    return Call("GET", path("v1", "pools", pool, "events", query=query))


def events_stream(pool: str, last_event_id: Optional[str]) -> Call:
    """The live stream, resuming after ``last_event_id`` (the header takes precedence over
    any ``after`` on the service's side, so it is the only one sent)."""
    headers: List[Tuple[str, str]] = [("Accept", "text/event-stream")]
    if last_event_id is not None:
        headers.append(("Last-Event-ID", last_event_id))
    return Call("GET", path("v1", "pools", pool, "events", "stream"), headers=tuple(headers))


# -- Answers ----------------------------------------------------------------------------
# Each reads a 2xx answer as the TypedDict the endpoint answers with (see `_types`).


def as_pool(answer: Answer) -> Pool:
    return cast(Pool, answer.json())


def as_pool_list(answer: Answer) -> PoolList:
    return cast(PoolList, answer.json())


def as_tenant(answer: Answer) -> TenantInfo:
    return cast(TenantInfo, answer.json())


def as_added(answer: Answer) -> AddedItems:
    return cast(AddedItems, answer.json())


def as_item(answer: Answer) -> Item:
    return cast(Item, answer.json())


def as_item_and_etag(answer: Answer) -> Tuple[Item, str]:
    """The item and its ``ETag`` header as given (``'"3"'``), for ``if_match``."""
    item = as_item(answer)
    return item, answer.headers.get("etag") or f'"{item["version"]}"'


def as_item_page(answer: Answer) -> ItemPage:
    return cast(ItemPage, answer.json())


def as_lease_info(answer: Answer) -> LeaseInfo:
    return cast(LeaseInfo, answer.json())


def as_lease_infos(answer: Answer) -> List[LeaseInfo]:
    body = answer.json()
    return cast(List[LeaseInfo], body["leases"])


def as_lease_page(answer: Answer) -> LeasePage:
    return cast(LeasePage, answer.json())


def as_counter_draw(answer: Answer) -> CounterDraw:
    return cast(CounterDraw, answer.json())


def as_counter_value(answer: Answer) -> CounterValue:
    return cast(CounterValue, answer.json())


def as_event_page(answer: Answer) -> EventPage:
    return cast(EventPage, answer.json())
