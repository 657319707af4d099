"""Counters and idempotency keys, in both flavours, against a real server."""

from __future__ import annotations

import re

import pytest
from conftest import Api, aw, close_api, unique

from leasehold import LeaseholdError


async def test_next_and_get_counter(api: Api) -> None:
    name = unique("counter")
    first = await aw(api.next_counter(name))
    assert first["name"] == name
    assert first["period"] is not None and re.fullmatch(r"\d{4}-\d{2}-\d{2}", first["period"])
    assert first["values"] == [1]
    assert "ids" not in first  # only with a format

    batch = await aw(api.next_counter(name, count=3, format="CASE-{date}-{seq:05}"))
    assert batch["values"] == [2, 3, 4]
    day = first["period"].replace("-", "")
    assert batch.get("ids") == [f"CASE-{day}-0000{n}" for n in (2, 3, 4)]

    today = await aw(api.get_counter(name))
    assert (today["name"], today["period"], today["value"]) == (name, first["period"], 4)
    same_day = await aw(api.get_counter(name, period=first["period"], tz="UTC"))
    assert same_day["value"] == 4

    forever = await aw(api.next_counter(name, period="none", count=2))
    assert (forever["period"], forever["values"]) == (None, [1, 2])
    assert (await aw(api.get_counter(name, period="none")))["value"] == 2

    with pytest.raises(LeaseholdError) as bad_tz:
        await aw(api.next_counter(name, tz="Mars/Olympus_Mons"))
    assert (bad_tz.value.status, bad_tz.value.code) == (400, "invalid_request")
    with pytest.raises(LeaseholdError) as bad_format:
        await aw(api.next_counter(name, format="CASE-{when}"))
    assert bad_format.value.code == "invalid_request"


async def test_an_idempotency_key_draws_once(api: Api) -> None:
    name = unique("keyed")
    key = unique("request")
    # Two handles with the same key (as a retried request would make): one draw.
    first = await aw(api.with_idempotency_key(key).next_counter(name, format="N-{seq}"))
    second = await aw(api.with_idempotency_key(key).next_counter(name, format="N-{seq}"))
    assert first["values"] == second["values"] == [1]
    assert first.get("ids") == second.get("ids") == ["N-1"]
    assert (await aw(api.get_counter(name)))["value"] == 1

    # Without a key, each call is its own draw.
    assert (await aw(api.next_counter(name)))["values"] == [2]
    assert (await aw(api.next_counter(name)))["values"] == [3]

    # The same key for a different request is refused, at once: no retry.
    handle = api.with_idempotency_key(key)
    assert handle.idempotency_key == key and api.idempotency_key is None
    retries = api.retries
    with pytest.raises(LeaseholdError) as reused:
        await aw(handle.next_counter(name, count=2))
    assert (reused.value.status, reused.value.code) == (409, "idempotency_key_reused")
    assert reused.value.attempts == 1 and not reused.value.gave_up
    assert reused.value.idempotency_key == key
    assert api.retries == retries
    assert (await aw(api.get_counter(name)))["value"] == 3


async def test_a_handle_shares_the_connections(api: Api) -> None:
    handle = api.with_idempotency_key("k")
    # Closing a handle leaves the client's connections open.
    await close_api(handle)
    await aw(api.ready())
    with pytest.raises(ValueError):
        api.with_idempotency_key("")
