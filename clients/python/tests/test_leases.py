"""Leases, in both flavours, against a real server: claims, the lower-level calls, and the
lease guard (renewal, loss by expiry or by a reassignment, release on leaving its
``with`` block, stopping when completed)."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from datetime import datetime
from typing import List

import pytest
from conftest import (
    AnyLease,
    Api,
    aw,
    close_api,
    eventually,
    first_allowed,
    lease_of,
    leases_of,
    make_api,
    unique,
    until,
)
from devserver import DevServer

from leasehold import AsyncLease, Client, Lease, LeaseholdError, RetryPolicy
from leasehold._lease_time import is_refusal, pause_after_failure


async def leave(lease: AnyLease, fail: bool = False) -> None:
    """Enters and leaves the lease's ``with`` block (``async with`` for an AsyncLease),
    raising inside it when ``fail``."""
    if isinstance(lease, AsyncLease):
        async with lease:
            if fail:
                raise RuntimeError("the work failed")
    else:
        with lease:
            if fail:
                raise RuntimeError("the work failed")


async def test_claim_next_and_the_lower_level_calls(api: Api) -> None:
    pool = unique("claims")
    await aw(api.put_pool(pool, lease_ms=60000))
    await aw(
        api.add_items(
            pool,
            [
                {"id": "low", "priority": 1},
                {"id": "high", "priority": 9, "data": {"k": "v"}},
                {"id": "mid", "priority": 5},
            ],
        )
    )
    high, mid = await leases_of(api.claim_next(pool, holder="alice", count=2))
    assert (high.id, mid.id) == ("high", "mid")
    assert (high.pool, high.holder, high.data, high.priority) == (pool, "alice", {"k": "v"}, 9)
    assert (high.version, high.attempts) == (2, 1)
    assert mid.token > high.token
    assert isinstance(high.expires_at, datetime)
    assert high.info["lease_expires_at"] is not None
    assert high.renewing and not high.lost.is_set()

    renewed = await aw(
        api.renew(pool, "high", holder="alice", token=high.token, lease_ms=120000)
    )
    assert renewed["token"] == high.token
    assert renewed["version"] > high.version

    page = await aw(api.list_leases(pool, "alice", limit=10))
    assert [(info["id"], info["token"]) for info in page["leases"]] == [
        ("high", high.token),
        ("mid", mid.token),
    ]
    assert page["next_cursor"] is None

    released = await aw(
        api.release(pool, "mid", holder="alice", token=mid.token, delay_ms=600000, priority=2)
    )
    assert (released["state"], released["holder"], released["priority"]) == (
        "delayed",
        None,
        2,
    )
    done = await aw(api.complete(pool, "high", holder="alice", token=high.token, data={"r": 1}))
    assert (done["state"], done["data"]) == ("done", {"r": 1})
    with pytest.raises(LeaseholdError) as twice:
        await aw(api.complete(pool, "high", holder="alice", token=high.token))
    assert (twice.value.status, twice.value.code) == (409, "lease_lost")
    assert twice.value.current is not None and twice.value.current["state"] == "done"

    # The guards learn their leases are over at their next renewal; stop them now.
    high.stop()
    mid.stop()
    low = await leases_of(api.claim_next(pool, holder="bob", count=5))
    assert [lease.id for lease in low] == ["low"]
    await aw(low[0].complete())
    assert await leases_of(api.claim_next(pool, holder="bob")) == []


async def test_claim_item_twice_by_its_holder_keeps_the_token(api: Api) -> None:
    pool = unique("claim-item")
    await aw(api.add_items(pool, ["q"]))
    first = await lease_of(api.claim_item(pool, "q", holder="rev-1", lease_ms=60000))
    again = await lease_of(api.claim_item(pool, "q", holder="rev-1", lease_ms=60000))
    assert again.token == first.token
    assert again.version == first.version + 1
    with pytest.raises(LeaseholdError) as taken:
        await lease_of(api.claim_item(pool, "q", holder="rev-2"))
    assert taken.value.code == "already_leased"
    assert taken.value.current is not None
    assert (taken.value.current["holder"], taken.value.current["state"]) == ("rev-1", "leased")
    again.stop()
    item = await aw(first.complete())
    assert item["state"] == "done"
    with pytest.raises(LeaseholdError) as finished:
        await lease_of(api.claim_item(pool, "q", holder="rev-2"))
    assert finished.value.code == "invalid_state"


async def test_missing_pool_and_invalid_claims(api: Api) -> None:
    with pytest.raises(LeaseholdError) as missing:
        await leases_of(api.claim_next(unique("nothing"), holder="alice"))
    assert missing.value.code == "not_found"
    assert await leases_of(api.claim_next(unique("nothing"), holder="a", create=True)) == []
    with pytest.raises(LeaseholdError) as too_many:
        await leases_of(api.claim_next(unique("nothing"), holder="alice", count=101))
    assert (too_many.value.status, too_many.value.field) == (400, "count")


async def test_the_guard_keeps_a_short_lease_alive_and_stops_once_completed(api: Api) -> None:
    pool = unique("guard")
    await aw(api.add_items(pool, ["w"]))
    started = time.monotonic()
    (lease,) = await leases_of(api.claim_next(pool, holder="worker", lease_ms=1500))
    first_expiry = lease.expires_at
    assert first_expiry is not None

    # Well past the lease time, the lease is still the worker's: renewed every 0.5 s.
    await until(started + 4.0)
    # The guard's version is read before the item: a renewal may land in between, and
    # then the item is ahead of what was read from the guard, never behind.
    renewed_version = lease.version
    item, _ = await aw(api.get_item(pool, "w"))
    assert (item["state"], item["holder"]) == ("leased", "worker")
    assert item["version"] >= renewed_version >= 5  # at least three renewals
    latest = lease.expires_at
    assert latest is not None and latest > first_expiry
    assert not lease.lost.is_set() and lease.renewing

    done = await aw(lease.complete({"ok": True}))
    assert done["state"] == "done"
    assert not lease.renewing and lease.finished
    version = done["version"]

    # Completing stopped the renewals: two renewal periods later nothing has changed,
    # and the lease is not reported lost.
    await until(time.monotonic() + 1.2)
    item, _ = await aw(api.get_item(pool, "w"))
    assert (item["state"], item["version"]) == ("done", version)
    assert not lease.lost.is_set()
    events = await aw(api.list_events(pool))
    types = [e["type"] for e in events["events"]]
    assert types[-1] == "completed"
    assert types.count("renewed") >= 3


async def test_a_stopped_lease_is_lost_at_expiry_and_can_be_claimed_by_another(
    api: Api,
) -> None:
    pool = unique("expiry")
    await aw(api.add_items(pool, ["x"]))
    lease = await lease_of(api.claim_item(pool, "x", holder="alice", lease_ms=1000))
    lease.stop()
    assert not lease.renewing
    await eventually(lease.lost.is_set, timeout=5, what="the stopped lease is lost")
    assert lease.lost_reason is not None and "expired" in lease.lost_reason
    assert lease.lost_error is None

    # The service lets another holder have it (its clock, not ours, decides the moment).
    taken: list[AnyLease] = []

    async def bob_claims() -> bool:
        try:
            taken.append(await lease_of(api.claim_item(pool, "x", holder="bob", lease_ms=60000)))
            return True
        except LeaseholdError as e:
            assert e.code == "already_leased"
            return False

    await eventually(bob_claims, timeout=5, what="another holder claims the expired item")
    bob = taken[0]
    assert bob.token > lease.token

    # The old lease is refused from now on.
    with pytest.raises(LeaseholdError) as renew:
        await aw(lease.renew())
    assert renew.value.code == "lease_lost"
    with pytest.raises(LeaseholdError) as complete:
        await aw(lease.complete())
    assert complete.value.code == "lease_lost"
    assert complete.value.current is not None
    assert complete.value.current["holder"] == "bob"
    await aw(bob.complete())


async def test_the_guard_notices_a_reassignment(api: Api) -> None:
    pool = unique("reassigned")
    await aw(api.add_items(pool, ["x"]))
    lease = await lease_of(api.claim_item(pool, "x", holder="alice", lease_ms=1500))
    await aw(api.assign_item(pool, "x", "bob"))
    await eventually(lease.lost.is_set, timeout=5, what="the guard notices the reassignment")
    assert lease.lost_error is not None
    assert lease.lost_error.code == "lease_lost"
    assert lease.lost_error.current is not None
    assert lease.lost_error.current["holder"] == "bob"
    assert not lease.renewing
    # Leaving its block gives back nothing: the item is bob's.
    await leave(lease)
    item, _ = await aw(api.get_item(pool, "x"))
    assert item["holder"] == "bob"


async def test_leaving_the_with_block_releases_unless_completed(api: Api) -> None:
    pool = unique("with")
    await aw(api.add_items(pool, ["plain", "failing", "completed"]))

    plain = await lease_of(api.claim_item(pool, "plain", holder="w", lease_ms=60000))
    await leave(plain)
    item, _ = await aw(api.get_item(pool, "plain"))
    assert (item["state"], item["holder"]) == ("available", None)
    assert plain.finished and not plain.renewing

    failing = await lease_of(api.claim_item(pool, "failing", holder="w", lease_ms=60000))
    with pytest.raises(RuntimeError):
        await leave(failing, fail=True)
    item, _ = await aw(api.get_item(pool, "failing"))
    assert item["state"] == "available"

    completed = await lease_of(api.claim_item(pool, "completed", holder="w", lease_ms=60000))
    await aw(completed.complete())
    await leave(completed)
    item, _ = await aw(api.get_item(pool, "completed"))
    assert item["state"] == "done"


async def test_a_lease_without_expiry_is_not_renewed(api: Api) -> None:
    pool = unique("no-expiry")
    await aw(api.add_items(pool, ["x", "y"]))  # the pool's lease time: 30 s
    (lease,) = await leases_of(api.claim_next(pool, holder="w", lease_ms=0))
    assert lease.expires_at is None
    assert not lease.renewing
    # Renewed by hand, it stays without expiry (lease_ms 0 is sent, not left out).
    renewed = await aw(lease.renew())
    assert renewed["lease_expires_at"] is None and lease.expires_at is None
    released = await aw(lease.release())
    assert released["state"] == "available"

    # So does one adopted without naming a lease time.
    await aw(api.assign_item(pool, "y", "w", lease_ms=0))
    (info,) = (await aw(api.list_leases(pool, "w")))["leases"]
    adopted = api.adopt(pool, info)
    assert not adopted.renewing
    assert (await aw(adopted.renew()))["lease_expires_at"] is None
    item, _ = await aw(api.get_item(pool, "y"))
    assert (item["state"], item["lease_expires_at"]) == ("leased", None)
    await aw(adopted.complete())


async def test_adopting_a_listed_lease_renews_it_at_once(api: Api) -> None:
    pool = unique("adopt")
    await aw(api.add_items(pool, ["x"]))
    # A lease granted on the holder's behalf, as one a restarted worker finds again.
    await aw(api.assign_item(pool, "x", "w", lease_ms=30000))
    (info,) = (await aw(api.list_leases(pool, "w")))["leases"]
    adopted = api.adopt(pool, info, lease_ms=30000)
    await eventually(
        lambda: adopted.version > info["version"], what="the adopted lease is renewed"
    )
    assert adopted.token == info["token"]
    item = await aw(adopted.complete())
    assert item["state"] == "done"


async def test_long_poll_claims_wait_past_the_client_timeout(flavour: str, dev: DevServer) -> None:
    api = make_api(flavour, dev.url, timeout=0.5)
    pool = unique("long-poll")
    try:
        # Nothing comes: the call waits its wait_ms (longer than the timeout) and answers
        # an empty list rather than timing out.
        started = time.monotonic()
        assert await leases_of(api.claim_next(pool, holder="w", wait_ms=1200, create=True)) == []
        assert time.monotonic() - started >= 1.1

        # An item added while it waits is granted at once.
        with Client(dev.url) as producer:
            timer = threading.Timer(0.3, producer.add_items, args=(pool, ["late"]))
            timer.start()
            started = time.monotonic()
            leases = await leases_of(
                api.claim_next(pool, holder="w", wait_ms=10000, create=True, lease_ms=0)
            )
            timer.join()
        assert [lease.id for lease in leases] == ["late"]
        assert time.monotonic() - started < 5
        await aw(leases[0].complete())
    finally:
        await close_api(api)


async def test_renewal_retries_through_failures_until_the_lease_runs_out(flavour: str) -> None:
    """A guard whose renewals get no answer (the server is gone) keeps trying, and calls
    the lease lost once its time has passed, not before."""
    with DevServer() as doomed:
        api = make_api(
            flavour, doomed.url, retries=RetryPolicy(base_delay=0.05, max_delay=0.2)
        )
        try:
            pool = unique("doomed")
            await aw(api.add_items(pool, ["x"]))
            started = time.monotonic()
            lease = await lease_of(api.claim_item(pool, "x", holder="w", lease_ms=1500))
            doomed.stop()
            await eventually(lease.lost.is_set, timeout=6, what="the lease is lost")
            # Not before the lease time, counted from the claim, had passed.
            assert time.monotonic() - started >= 1.5
            assert lease.lost_reason is not None and "no renewal succeeded" in lease.lost_reason
            assert lease.lost_error is None
        finally:
            await close_api(api)


def test_lease_types_match_the_flavour(dev: DevServer) -> None:
    with Client(dev.url) as client:
        pool = unique("types")
        client.add_items(pool, ["x"])
        lease = client.claim_item(pool, "x", holder="w", lease_ms=0)
        assert isinstance(lease, Lease)
        assert isinstance(lease.lost, threading.Event)
        lease.complete()


# -- Rate-limited renewals -------------------------------------------------------------------


def renewal_failures(caplog: pytest.LogCaptureFixture, pool: str) -> List[logging.LogRecord]:
    """The guard's log records of renewals of ``pool``'s items that failed without a
    refusal."""
    return [
        r
        for r in caplog.records
        if r.name == "leasehold" and pool in r.getMessage() and "renewal failed" in r.getMessage()
    ]


async def test_a_renewal_answered_429_without_retries_keeps_the_lease(
    flavour: str, one_per_second: DevServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``retries=0``, a renewal answered 429 is given up on, not refused: the guard
    keeps the lease and tries again, after the Retry-After (which ends before the lease
    does) rather than sooner."""
    caplog.set_level(logging.DEBUG, logger="leasehold")
    api = make_api(flavour, one_per_second.url, retries=0)
    try:
        pool = unique("limited-guard")
        with Client(one_per_second.url) as setup:  # its retries wait out any 429
            setup.add_items(pool, ["x"])
        # The claim is the one request this second allows: the guard's first renewal, at
        # 0.8 s, is answered 429 with Retry-After: 1, which ends at 1.8 s, before the
        # lease's 2.4 s; the one after it is admitted.
        lease = await first_allowed(
            lambda: lease_of(api.claim_item(pool, "x", holder="w", lease_ms=2400))
        )
        granted = lease.version

        # A renewal by hand, answered 429, is an error, but not the loss of the lease.
        with pytest.raises(LeaseholdError) as limited:
            await aw(lease.renew())
        assert (limited.value.status, limited.value.code) == (429, "rate_limited")
        assert limited.value.gave_up and limited.value.attempts == 1
        assert not lease.lost.is_set() and lease.renewing

        await eventually(lambda: lease.version > granted, timeout=5, what="a renewal")
        assert not lease.lost.is_set() and lease.lost_error is None and lease.renewing
        (failure,) = renewal_failures(caplog, pool)
        assert "429" in failure.getMessage()
        # The renewal that went through came the Retry-After (1 s) after the 429, not
        # sooner: its new expiry, less the lease time, is when the service renewed it.
        expires_at = lease.expires_at
        assert expires_at is not None
        renewed_at = expires_at.timestamp() - 2.4
        assert renewed_at - failure.created >= 0.95
        lease.stop()
    finally:
        await close_api(api)


def test_pausing_after_a_failed_renewal() -> None:
    # A quarter of the time left, between 10 ms and 1 s.
    assert pause_after_failure(2.0, None) == 0.5
    assert pause_after_failure(100.0, None) == 1.0
    assert pause_after_failure(0.02, None) == 0.01
    assert pause_after_failure(0.0, None) == 0.0
    # A Retry-After that ends before the lease: waited for, whole.
    assert pause_after_failure(1.6, 1.0) == 1.0
    assert pause_after_failure(20 * 86400.0, 30.0) == 30.0
    # One that ends later (or is huge): a last try at three quarters of the time left.
    assert pause_after_failure(1.0, 1.0) == 0.75
    assert pause_after_failure(10 * 86400.0, 1e12) == 7.5 * 86400.0
    assert pause_after_failure(1.0, math.inf) == 0.75


def test_what_loses_a_lease() -> None:
    assert is_refusal(409, gave_up=False)
    assert is_refusal(404, gave_up=False)
    # "Not now" is never "no", retried or not.
    for status in (408, 429, 500, 502, 503, 504, None):
        assert not is_refusal(status, gave_up=False), status
        assert not is_refusal(status, gave_up=True), status


# -- Long leases and leases without expiry --------------------------------------------------

THIRTY_DAYS_MS = 30 * 86400 * 1000


def guard_running(lease: AnyLease) -> bool:
    """Whether the lease's renewing thread (or task) is still there."""
    name = f"leasehold-lease-{lease.pool}/{lease.id}"
    if isinstance(lease, AsyncLease):
        return any(task.get_name() == name for task in asyncio.all_tasks())
    return any(thread.name == name for thread in threading.enumerate())


async def test_a_thirty_day_lease_is_guarded_and_ends_at_once(api: Api) -> None:
    pool = unique("thirty-days")
    await aw(api.put_pool(pool, lease_ms=THIRTY_DAYS_MS))
    await aw(api.add_items(pool, ["named", "pools"]))
    named = await lease_of(api.claim_item(pool, "named", holder="w", lease_ms=THIRTY_DAYS_MS))
    (pools,) = await leases_of(api.claim_next(pool, holder="w"))  # the pool's lease time
    for lease in (named, pools):
        expires_at = lease.expires_at
        assert expires_at is not None
        assert expires_at.timestamp() - time.time() > 29.9 * 86400
        assert lease.renewing and not lease.lost.is_set() and guard_running(lease)

    info = await aw(named.renew())
    assert info["lease_expires_at"] is not None
    # Stopped, the guard waits for the expiry, thirty days away; completing ends that
    # wait at once, as it ends the renewing one.
    named.stop()
    assert not named.renewing
    await aw(named.complete())
    await aw(pools.complete())
    await eventually(
        lambda: not guard_running(named) and not guard_running(pools),
        timeout=2,
        what="the guards end",
    )
    assert not named.lost.is_set() and not pools.lost.is_set()
