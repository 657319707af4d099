"""Retries, in both flavours, against real servers: through 429 honouring Retry-After,
never on another 4xx, on no answer (a port nobody listens on, a frozen server), and a
write whose outcome was unknown applied once when sent again with its key."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Iterator

import httpx
import pytest
from conftest import Api, aw, close_api, eventually, lease_of, make_api, unique
from devserver import DevServer, free_port

from leasehold import LeaseholdError, RetryPolicy

# -- The policy itself --------------------------------------------------------------------


def test_the_backoff_ceiling_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.1, max_delay=1.0)
    assert [round(policy.ceiling(n), 3) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert policy.ceiling(10_000) == 1.0


def test_backoff_is_jittered_within_the_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    delays = [policy.delay(2) for _ in range(200)]
    assert all(0 <= d <= 0.4 for d in delays)
    assert len(set(delays)) > 100, "not jittered"


def test_retry_after_is_waited_at_least() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    delays = [policy.delay(0, retry_after=3.0) for _ in range(100)]
    assert all(3.0 <= d <= 3.1 for d in delays)


def test_retries_given_as_a_number() -> None:
    assert RetryPolicy.of(0).max_attempts == 1
    assert RetryPolicy.of(4) == RetryPolicy()
    with pytest.raises(ValueError):
        RetryPolicy.of(-1)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# -- Against a rate-limited server --------------------------------------------------------


@pytest.fixture(scope="module")
def limited() -> Iterator[DevServer]:
    """A server that lets the tenant make 2 requests a second, 1 at once."""
    with DevServer("--rate-limit", "2", "--rate-burst", "1") as server:
        yield server


async def test_429_is_retried_after_retry_after(flavour: str, limited: DevServer) -> None:
    api = make_api(flavour, limited.url)
    try:
        name = unique("limited")
        await aw(api.next_counter(name))  # takes the one request the burst allows
        retries = api.retries
        started = time.monotonic()
        second = await aw(api.next_counter(name))  # answered 429, Retry-After: 1
        elapsed = time.monotonic() - started
        assert second["values"] == [2]
        assert api.retries > retries
        # It waited as long as the service asked, not its own (much shorter) backoff.
        assert elapsed >= 1.0
    finally:
        await close_api(api)


async def test_429_without_retries_says_when_to_come_back(
    flavour: str, limited: DevServer
) -> None:
    api = make_api(flavour, limited.url, retries=0)
    patient = make_api(flavour, limited.url)
    try:
        name = unique("limited")
        await aw(patient.next_counter(name))
        with pytest.raises(LeaseholdError) as limited_error:
            await aw(api.next_counter(name))
        error = limited_error.value
        assert (error.status, error.code) == (429, "rate_limited")
        assert error.retry_after == 1.0
        assert error.attempts == 1 and error.gave_up
        assert not error.outcome_unknown  # a 429 is answered before anything is done
        assert api.retries == 0
    finally:
        await close_api(api)
        await close_api(patient)


async def test_a_retry_after_past_the_time_allowed_gives_up_at_once(
    flavour: str, limited: DevServer
) -> None:
    api = make_api(flavour, limited.url, retries=RetryPolicy(max_elapsed=0.5))
    patient = make_api(flavour, limited.url)
    try:
        name = unique("limited")
        await aw(patient.next_counter(name))
        started = time.monotonic()
        with pytest.raises(LeaseholdError) as gave_up:
            await aw(api.get_counter(name))
        assert time.monotonic() - started < 0.5
        assert gave_up.value.code == "rate_limited" and gave_up.value.gave_up
        assert gave_up.value.retry_after is not None and gave_up.value.retry_after >= 1.0
    finally:
        await close_api(api)
        await close_api(patient)


# -- Never on another 4xx -----------------------------------------------------------------


async def test_a_409_is_not_retried(api: Api) -> None:
    pool = unique("no-retry")
    await aw(api.add_items(pool, ["x"]))
    lease = await lease_of(api.claim_item(pool, "x", holder="alice", lease_ms=0))
    retries = api.retries
    with pytest.raises(LeaseholdError) as refused:
        await lease_of(api.claim_item(pool, "x", holder="bob"))
    assert refused.value.code == "already_leased"
    assert refused.value.attempts == 1 and not refused.value.gave_up
    assert not refused.value.outcome_unknown
    assert api.retries == retries
    # It was sent once: the pool counted one conflict.
    assert (await aw(api.get_pool(pool)))["stats"]["conflicts"] == 1
    await aw(lease.complete())


# -- No answer ----------------------------------------------------------------------------


async def test_a_refused_connection_is_retried_then_given_up(flavour: str) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
    api = make_api(flavour, f"http://127.0.0.1:{free_port()}", retries=policy)
    try:
        with pytest.raises(LeaseholdError) as read:
            await aw(api.get_pool("p"))
        error = read.value
        assert (error.status, error.code) == (None, None)
        assert error.gave_up and error.attempts == 3
        assert isinstance(error.__cause__, httpx.ConnectError)
        with pytest.raises(LeaseholdError) as write:
            await aw(api.next_counter("c"))
        # Never connected: the write cannot have been applied.
        assert write.value.attempts == 3 and not write.value.outcome_unknown
        # Every attempt of a write carried one fresh UUID v4 as its key.
        assert write.value.idempotency_key is not None
        assert uuid.UUID(write.value.idempotency_key).version == 4
        assert api.retries == 4
    finally:
        await close_api(api)


async def test_an_unknown_outcome_is_applied_once_when_sent_again_with_its_key(
    flavour: str,
) -> None:
    with DevServer() as server:
        policy = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.1, max_elapsed=10)
        api = make_api(flavour, server.url, timeout=0.3, retries=policy)
        try:
            name = unique("frozen")
            server.pause()  # connections are accepted, nothing is answered
            try:
                with pytest.raises(LeaseholdError) as timed_out:
                    await aw(api.next_counter(name))
            finally:
                server.resume()
            error = timed_out.value
            assert error.status is None and error.gave_up and error.attempts == 3
            assert error.outcome_unknown
            assert isinstance(error.__cause__, httpx.TimeoutException)
            assert error.idempotency_key is not None

            # The requests the frozen server received may be applied now that it runs;
            # sending the call again with its key applies it at most once in all.
            again = await aw(api.with_idempotency_key(error.idempotency_key).next_counter(name))
            assert again["values"] == [1]
            assert (await aw(api.get_counter(name)))["value"] == 1
        finally:
            await close_api(api)



@pytest.fixture(scope="module")
def narrow() -> Iterator[DevServer]:
    """A server that takes one connection at a time, closing any other at once."""
    with DevServer("--max-connections", "1") as server:
        yield server


def refuses_connections(url: str) -> bool:
    """Whether the server closes a new connection at once (it has its one already)."""
    try:
        httpx.get(url + "/readyz", timeout=2.0)
    except httpx.TransportError:
        return True
    return False


async def test_a_broken_connection_is_retried(flavour: str, narrow: DevServer) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.1)
    api = make_api(flavour, narrow.url, retries=policy)
    name = unique("broken")
    host, port = narrow.url.removeprefix("http://").split(":")
    try:
        # Another connection takes the server's only one: ours are cut as they come.
        with socket.create_connection((host, int(port))):
            await eventually(lambda: refuses_connections(narrow.url), what="the server is full")
            with pytest.raises(LeaseholdError) as broken:
                await aw(api.next_counter(name))
        error = broken.value
        assert error.status is None and error.gave_up and error.attempts == 3
        assert isinstance(error.__cause__, (httpx.NetworkError, httpx.RemoteProtocolError))
        # Each attempt was sent on a connection that then broke: the outcome is unknown.
        assert error.outcome_unknown
        # Once the other connection is gone, the service answers again; the counter shows
        # that nothing was applied.
        await eventually(lambda: not refuses_connections(narrow.url), what="the server has room")
        assert (await aw(api.get_counter(name)))["value"] == 0
    finally:
        await close_api(api)
