"""Pools and items, in both flavours, against a real server: every method, its answer,
and the errors that carry the item's current state."""

from __future__ import annotations

import pytest
from conftest import Api, aw, lease_of, unique

from leasehold import AsyncClient, LeaseholdError


async def test_ready_and_tenant(api: Api) -> None:
    await aw(api.ready())
    tenant = await aw(api.tenant())
    assert tenant["tenant"] == "dev"
    assert tenant["limits"]["max_items_per_pool"] > 0


async def test_pool_lifecycle(api: Api) -> None:
    pool = unique("pool")
    created = await aw(api.put_pool(pool, {"lease_ms": 60000}, max_attempts=3))
    assert created["name"] == pool
    assert created["config"]["lease_ms"] == 60000
    assert created["config"]["max_attempts"] == 3

    # Settings not given keep their value; None keeps done items for ever.
    changed = await aw(api.put_pool(pool, max_leases_per_holder=2, keep_done_ms=None))
    assert changed["config"]["lease_ms"] == 60000
    assert changed["config"]["max_leases_per_holder"] == 2
    assert changed["config"]["keep_done_ms"] is None

    fetched = await aw(api.get_pool(pool))
    assert fetched["config"] == changed["config"]
    assert fetched["counts"]["available"] == 0

    await aw(api.delete_pool(pool))
    with pytest.raises(LeaseholdError) as gone:
        await aw(api.get_pool(pool))
    assert (gone.value.status, gone.value.code) == (404, "not_found")
    assert pool in gone.value.detail


async def test_list_pools_pages(api: Api) -> None:
    prefix = unique("list")
    for suffix in ("a", "b", "c"):
        await aw(api.put_pool(f"{prefix}-{suffix}"))
    first = await aw(api.list_pools(after=f"{prefix}-", limit=2))
    assert [p["name"] for p in first["pools"]] == [f"{prefix}-a", f"{prefix}-b"]
    assert first["next_after"] == f"{prefix}-b"
    second = await aw(api.list_pools(after=first["next_after"], limit=1))
    assert [p["name"] for p in second["pools"]] == [f"{prefix}-c"]
    assert second["pools"][0]["counts"]["available"] == 0


async def test_invalid_names_are_refused_with_the_field(api: Api) -> None:
    with pytest.raises(LeaseholdError) as refused:
        await aw(api.add_items("bad name", ["a"]))
    error = refused.value
    assert (error.status, error.code) == (400, "invalid_request")
    assert error.field is not None
    assert error.outcome_unknown is False
    assert error.attempts == 1


async def test_items_add_get_put_patch_delete(api: Api) -> None:
    pool = unique("items")
    added = await aw(
        api.add_items(pool, [{"id": "a", "data": {"n": 1}}, {"id": "b", "priority": 5}, "c"])
    )
    assert added == {"created": ["a", "b", "c"], "existing": []}
    again = await aw(api.add_items(pool, [{"id": "a", "data": {"n": 99}}, "d"]))
    assert again == {"created": ["d"], "existing": ["a"]}

    item, etag = await aw(api.get_item(pool, "a"))
    assert (item["version"], item["data"], etag) == (1, {"n": 1}, '"1"')

    replaced = await aw(api.put_item(pool, "a", {"n": 2}, if_match=etag))
    assert (replaced["version"], replaced["data"]) == (2, {"n": 2})

    # A stale ETag is refused with what the item is now.
    with pytest.raises(LeaseholdError) as stale:
        await aw(api.put_item(pool, "a", {"n": 3}, if_match=etag))
    assert (stale.value.status, stale.value.code) == (412, "precondition_failed")
    assert stale.value.current is not None
    assert stale.value.current["version"] == 2
    assert stale.value.current["state"] == "available"

    with pytest.raises(LeaseholdError) as conflict:
        await aw(api.put_item(pool, "a", {"n": 3}, expected_version=1))
    assert (conflict.value.status, conflict.value.code) == (409, "version_conflict")

    # A version number works as If-Match too, and priority is written with the data.
    third = await aw(api.put_item(pool, "a", {"n": 3}, if_match=2, priority=7))
    assert (third["version"], third["priority"]) == (3, 7)

    fresh = await aw(api.put_item(pool, "new", {"x": True}, if_none_match="*"))
    assert fresh["version"] == 1
    with pytest.raises(LeaseholdError) as exists:
        await aw(api.put_item(pool, "new", {"x": False}, if_none_match="*"))
    assert exists.value.code == "precondition_failed"

    # A merge patch: a null removes the key.
    patched = await aw(api.patch_item(pool, "a", {"tag": "x", "n": None}))
    assert patched["data"] == {"tag": "x"}
    assert patched["version"] == 4
    with pytest.raises(LeaseholdError) as stale_patch:
        await aw(api.patch_item(pool, "a", {"tag": "y"}, if_match='"3"'))
    assert stale_patch.value.code == "precondition_failed"
    with pytest.raises(LeaseholdError) as missing:
        await aw(api.patch_item(pool, "nobody", {"tag": "y"}))
    assert missing.value.code == "not_found"

    with pytest.raises(LeaseholdError) as wrong_version:
        await aw(api.delete_item(pool, "d", if_match=7))
    assert wrong_version.value.code == "precondition_failed"
    await aw(api.delete_item(pool, "d", if_match=1))
    with pytest.raises(LeaseholdError) as deleted:
        await aw(api.get_item(pool, "d"))
    assert deleted.value.code == "not_found"


async def test_list_items_pages_and_filters(api: Api) -> None:
    pool = unique("list-items")
    await aw(api.add_items(pool, [{"id": f"i{n}", "priority": n} for n in range(5)]))
    first = await aw(api.list_items(pool, limit=2))
    assert [i["id"] for i in first["items"]] == ["i4", "i3"]  # claim order: best first
    assert first["next_cursor"] is not None
    rest = await aw(api.list_items(pool, limit=10, cursor=first["next_cursor"]))
    assert [i["id"] for i in rest["items"]] == ["i2", "i1", "i0"]
    assert rest["next_cursor"] is None

    lease = await lease_of(api.claim_item(pool, "i0", holder="alice", lease_ms=0))
    held = await aw(api.list_items(pool, state="leased"))
    assert [i["id"] for i in held["items"]] == ["i0"]
    by_holder = await aw(api.list_items(pool, holder="alice"))
    assert [i["id"] for i in by_holder["items"]] == ["i0"]
    assert (await aw(api.list_items(pool, state="done")))["items"] == []
    await aw(lease.complete())


async def test_assign_and_unassign(api: Api) -> None:
    pool = unique("assign")
    await aw(api.add_items(pool, ["x"]))
    _, etag = await aw(api.get_item(pool, "x"))
    assigned = await aw(api.assign_item(pool, "x", "bob", if_match=etag, lease_ms=60000))
    assert assigned["holder"] == "bob"
    assert assigned["state"] == "leased"
    assert assigned.get("token", 0) > 0

    # A reassignment made against a version that is no longer current is refused, with
    # the holder who won.
    with pytest.raises(LeaseholdError) as conflict:
        await aw(api.assign_item(pool, "x", "carol", expected_version=1))
    assert conflict.value.code == "version_conflict"
    assert conflict.value.current is not None
    assert conflict.value.current["holder"] == "bob"

    carol = await aw(
        api.assign_item(pool, "x", "carol", expected_version=assigned["version"])
    )
    assert carol["holder"] == "carol"
    assert carol.get("token", 0) > assigned.get("token", 0)

    back = await aw(api.assign_item(pool, "x", None))
    assert (back["state"], back["holder"]) == ("available", None)


async def test_requeue(api: Api) -> None:
    pool = unique("requeue")
    await aw(api.add_items(pool, ["r"]))
    lease = await lease_of(api.claim_item(pool, "r", holder="alice", lease_ms=0))
    with pytest.raises(LeaseholdError) as leased:
        await aw(api.requeue_item(pool, "r"))
    assert leased.value.code == "already_leased"
    await aw(lease.complete())

    again = await aw(api.requeue_item(pool, "r", priority=4))
    assert (again["state"], again["attempts"], again["priority"]) == ("available", 0, 4)
    snoozed = await aw(api.requeue_item(pool, "r", delay_ms=600000))
    assert snoozed["state"] == "delayed"
    assert "available_at" in snoozed
    at_once = await aw(api.requeue_item(pool, "r", available_at="2000-01-01T00:00:00Z"))
    assert at_once["state"] == "available"


async def test_flavour_is_what_it_says(api: Api, flavour: str) -> None:
    # The parametrization really runs both clients.
    assert isinstance(api, AsyncClient) == (flavour == "async")
