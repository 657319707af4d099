"""Retries, in both flavours, against real servers: through 429 honouring Retry-After,
never on another 4xx, on no answer (a port nobody listens on, a frozen server), and a
write whose outcome was unknown applied once when sent again with its key."""

from __future__ import annotations

import asyncio
import math
import socket
import time
import uuid
from typing import Iterator, List

import httpx
import pytest
from conftest import Api, aw, close_api, eventually, first_allowed, lease_of, make_api, unique
from devserver import DevServer, free_port

from leasehold import AsyncClient, LeaseholdError, RetryPolicy
from leasehold._http import Answer, Attempts, Call, RetryCounter

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
    for delays in ({"base_delay": math.inf}, {"max_delay": math.nan}, {"max_elapsed": math.nan}):
        with pytest.raises(ValueError):
            RetryPolicy(**delays)  # type: ignore[arg-type]
    assert RetryPolicy(max_elapsed=math.inf).max_elapsed == math.inf


def answered(status: int, retry_after: str) -> Answer:
    """An answer as the transport hands it over, for the retry loop's decisions."""
    return Answer(status, httpx.Headers({"Retry-After": retry_after}), b"")


@pytest.mark.parametrize(
    ("retry_after", "policy"),
    [
        # Past the policy's 30 s in all.
        ("86400", RetryPolicy()),
        ("1e12", RetryPolicy()),
        ("inf", RetryPolicy()),
        # Without a time bound, longer than the longest wait (about 31 years).
        ("1e12", RetryPolicy(max_elapsed=math.inf)),
        ("1e400", RetryPolicy(max_elapsed=math.inf)),
        ("inf", RetryPolicy(max_elapsed=math.inf)),
    ],
)
def test_a_huge_retry_after_gives_up_at_once(retry_after: str, policy: RetryPolicy) -> None:
    for status in (429, 503):
        attempts = Attempts(Call("POST", "/v1/counters/c/next"), policy, 10.0, RetryCounter())
        outcome = answered(status, retry_after)
        assert attempts.next_wait(outcome) is None
        error = attempts.error(outcome)
        assert error.gave_up and error.attempts == 1
        assert error.retry_after == float(retry_after)
        assert error.outcome_unknown == (status == 503)


def test_a_long_retry_after_is_waited_without_a_time_bound() -> None:
    policy = RetryPolicy(max_elapsed=math.inf)
    attempts = Attempts(Call("GET", "/v1/tenant"), policy, 10.0, RetryCounter())
    wait = attempts.next_wait(answered(429, "86400"))
    assert wait is not None and 86400 <= wait <= 86400 + policy.base_delay


def test_a_retry_after_that_is_not_a_number_is_ignored() -> None:
    for retry_after in ("nan", "-1", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"):
        attempts = Attempts(Call("GET", "/v1/tenant"), RetryPolicy(), 10.0, RetryCounter())
        wait = attempts.next_wait(answered(429, retry_after))
        assert wait is not None and 0 <= wait <= RetryPolicy().base_delay


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
            # A read that got no answer changed nothing, whatever happened to it.
            with pytest.raises(LeaseholdError) as read:
                await aw(api.get_counter(name))
            assert read.value.status is None and read.value.gave_up
            assert not read.value.outcome_unknown
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


# -- Header values that cannot be sent ------------------------------------------------------

BAD_VALUES: List[str] = ['"1"\r\nX-Injected: yes', "a\nb", "a\rb", "caf\u00e9", "nul\x00", "tab\t"]


async def test_header_values_that_cannot_be_sent_are_refused_before_sending(
    flavour: str, api: Api
) -> None:
    pool = unique("headers")
    await aw(api.add_items(pool, ["x"]))
    item, _ = await aw(api.get_item(pool, "x"))
    retries = api.retries
    for bad in BAD_VALUES:
        with pytest.raises(ValueError, match="If-Match"):
            await aw(api.put_item(pool, "x", {"v": 1}, if_match=bad))
        with pytest.raises(ValueError, match="If-Match"):
            await aw(api.patch_item(pool, "x", {"v": 1}, if_match=bad))
        with pytest.raises(ValueError, match="If-None-Match"):
            await aw(api.put_item(pool, "new", {"v": 1}, if_none_match=bad))
        with pytest.raises(ValueError, match="If-Match"):
            await aw(api.delete_item(pool, "x", if_match=bad))
        with pytest.raises(ValueError, match="If-Match"):
            await aw(api.assign_item(pool, "x", "bob", if_match=bad))
        with pytest.raises(ValueError, match="Idempotency-Key"):
            api.with_idempotency_key(bad)
        with pytest.raises(ValueError, match="Last-Event-ID"):
            api.follow_events(pool, after=bad)
    for bad_key in ("", "with space", "k" * 129):
        with pytest.raises(ValueError, match="Idempotency-Key"):
            api.with_idempotency_key(bad_key)
    assert api.with_idempotency_key("k" * 128).idempotency_key == "k" * 128
    with pytest.raises(ValueError, match="Authorization") as key_error:
        make_api(flavour, api.base_url, api_key="secret\r\nX-Injected: yes")
    assert "secret" not in str(key_error.value)  # a key is not repeated in errors

    # Nothing was sent: no retry, no conflict counted (an If-Match that reached the
    # service would have been one), the item unchanged, "new" never created.
    assert api.retries == retries
    pool_now = await aw(api.get_pool(pool))
    assert pool_now["stats"]["conflicts"] == 0
    assert (await aw(api.get_item(pool, "x")))[0]["version"] == item["version"]
    with pytest.raises(LeaseholdError) as missing:
        await aw(api.get_item(pool, "new"))
    assert missing.value.code == "not_found"


# -- Cancelling -----------------------------------------------------------------------------


async def test_cancelling_a_task_ends_a_call_waiting_to_retry_at_once(
    one_per_second: DevServer,
) -> None:
    api = AsyncClient(one_per_second.url)  # the default retries: Retry-After is waited
    try:
        name = unique("cancelled")
        await first_allowed(lambda: api.next_counter(name))
        retries = api.retries
        # Within the second the first draw took, the next one is answered 429 with
        # Retry-After: 1, and waits to be sent again.
        call = asyncio.get_running_loop().create_task(api.next_counter(name))
        await eventually(lambda: api.retries > retries, interval=0.01, what="the 429")
        cancelled_at = time.monotonic()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert time.monotonic() - cancelled_at < 0.25
        assert api.retries == retries + 1  # not sent again
        # Only the first draw went through.
        assert (await first_allowed(lambda: api.get_counter(name)))["value"] == 1
    finally:
        await api.aclose()
