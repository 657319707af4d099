"""A pool's events, in both flavours, against real servers: pages of the log, and the live
stream (every event once and in order across connections the server cuts, ending when
the pool is deleted or the stream closed, reporting trimmed events)."""

from __future__ import annotations

import asyncio
import select
import threading
from typing import Iterator, List, Optional, Union

import pytest
from conftest import Api, aw, close_api, eventually, leases_of, make_api, unique
from devserver import DevServer

from leasehold import (
    AsyncClient,
    AsyncEventStream,
    Client,
    EventStream,
    Followed,
    LeaseholdError,
    Trimmed,
)


class Follower:
    """Follows a pool in the background, the flavour's way (a thread for the blocking
    stream, a task for the async one), collecting what the stream yields."""

    def __init__(self, api: Api, pool: str, after: Optional[str] = None) -> None:
        self.yielded: List[Followed] = []
        self.ended = threading.Event()  # the iteration is over
        self.error: Optional[BaseException] = None
        self.stream: Union[EventStream, AsyncEventStream] = api.follow_events(pool, after=after)
        self._task: Optional["asyncio.Task[None]"] = None
        if isinstance(self.stream, AsyncEventStream):
            self._task = asyncio.get_running_loop().create_task(self._follow_async(self.stream))
        else:
            threading.Thread(target=self._follow, args=(self.stream,), daemon=True).start()

    def _follow(self, stream: EventStream) -> None:
        try:
            for followed in stream:
                self.yielded.append(followed)
        except BaseException as e:
            self.error = e
        finally:
            self.ended.set()

    async def _follow_async(self, stream: AsyncEventStream) -> None:
        try:
            async for followed in stream:
                self.yielded.append(followed)
        except BaseException as e:
            self.error = e
        finally:
            self.ended.set()

    def ids(self) -> List[str]:
        return [e["id"] for e in self.yielded if not isinstance(e, Trimmed)]

    async def close(self) -> None:
        if isinstance(self.stream, AsyncEventStream):
            await self.stream.aclose()
        else:
            self.stream.close()
        await eventually(self.ended.is_set, timeout=5, what="the closed stream ends")


async def all_event_ids(api: Api, pool: str) -> List[str]:
    """Every event id in the pool's log, page by page."""
    ids: List[str] = []
    after: Optional[str] = None
    while True:
        page = await aw(api.list_events(pool, after=after, limit=3))
        if not page["events"]:
            return ids
        ids.extend(e["id"] for e in page["events"])
        after = page["next_after"]


async def test_list_events_pages(api: Api) -> None:
    pool = unique("events")
    await aw(api.add_items(pool, ["x"]))
    (lease,) = await leases_of(api.claim_next(pool, holder="alice"))
    await aw(lease.complete())

    first = await aw(api.list_events(pool, limit=2))
    assert [e["type"] for e in first["events"]] == ["added", "claimed"]
    assert first["trimmed"] is False
    claimed = first["events"][1]
    assert (claimed["item"], claimed["holder"], claimed["token"]) == ("x", "alice", lease.token)
    second = await aw(api.list_events(pool, after=first["next_after"]))
    assert [(e["type"], e["state"], e["version"]) for e in second["events"]] == [
        ("completed", "done", 3)
    ]
    empty = await aw(api.list_events(pool, after=second["next_after"]))
    assert empty["events"] == [] and empty["next_after"] == second["next_after"]

    with pytest.raises(LeaseholdError) as bad:
        await aw(api.list_events(pool, after="yesterday"))
    assert (bad.value.status, bad.value.field) == (400, "after")
    with pytest.raises(LeaseholdError) as missing:
        await aw(api.list_events(unique("none")))
    assert missing.value.code == "not_found"


async def test_following_sees_each_change_and_ends_when_the_pool_is_deleted(api: Api) -> None:
    pool = unique("follow")
    await aw(api.add_items(pool, ["a"]))
    follower = Follower(api, pool)
    try:
        await aw(api.add_items(pool, ["b"]))
        (lease,) = await leases_of(api.claim_next(pool, holder="w"))
        await aw(lease.complete())
        await eventually(lambda: len(follower.yielded) >= 4, what="four events arrive")
        events = [e for e in follower.yielded if not isinstance(e, Trimmed)]
        assert [(e["type"], e["item"]) for e in events] == [
            ("added", "a"),
            ("added", "b"),
            ("claimed", lease.id),
            ("completed", lease.id),
        ]
        assert follower.ids() == await all_event_ids(api, pool)
        assert follower.stream.last_event_id == follower.ids()[-1]

        await aw(api.delete_pool(pool))
        await eventually(follower.ended.is_set, what="the stream ends with its pool")
        assert follower.error is None
        assert len(follower.yielded) == 4
    finally:
        await follower.close()


async def test_following_a_missing_pool_is_refused(api: Api) -> None:
    follower = Follower(api, unique("missing"))
    await eventually(follower.ended.is_set, what="the refused stream ends")
    assert isinstance(follower.error, LeaseholdError)
    assert follower.error.code == "not_found"


async def test_closing_ends_a_stream_waiting_for_events(api: Api) -> None:
    pool = unique("idle")
    await aw(api.add_items(pool, ["a"]))
    follower = Follower(api, pool)
    await eventually(lambda: len(follower.yielded) == 1, what="the first event arrives")
    assert not follower.ended.is_set()
    await follower.close()  # the stream is blocked reading: it is cut
    assert follower.error is None
    assert follower.stream.closed


async def test_trimmed_events_are_reported(api: Api) -> None:
    pool = unique("trimmed")
    await aw(api.put_pool(pool, max_events=1))
    await aw(api.add_items(pool, ["a"]))
    seen = (await aw(api.list_events(pool)))["events"][0]["id"]
    for n in range(5):
        await aw(api.add_items(pool, [f"b{n}"]))
    follower = Follower(api, pool, after=seen)
    try:
        await eventually(lambda: len(follower.yielded) >= 2, what="the stream resumes")
        marker, kept = follower.yielded[:2]
        assert marker == Trimmed()
        assert isinstance(kept, dict) and kept["item"] == "b4"
    finally:
        await follower.close()


@pytest.fixture(scope="module")
def cutting() -> Iterator[DevServer]:
    """A server that ends every event stream after a second."""
    with DevServer("--stream-max-secs", "1") as server:
        yield server


async def test_following_resumes_across_cuts_without_losing_or_repeating(
    flavour: str, cutting: DevServer
) -> None:
    api = make_api(flavour, cutting.url)
    pool = unique("cuts")
    closing: List[Follower] = []
    try:
        await aw(api.add_items(pool, ["seed"]))
        follower = Follower(api, pool)
        closing.append(follower)
        for round in range(6):
            await aw(api.add_items(pool, [f"i{round}"]))
            (lease,) = await leases_of(api.claim_next(pool, holder="w"))
            await aw(lease.complete())
            # Waits for this round's events, so that the rounds span several cuts.
            expected = len(await all_event_ids(api, pool))
            await eventually(
                lambda: len(follower.yielded) >= expected,  # noqa: B023 (awaited here)
                what=f"round {round}",
            )
        # Every event exactly once, in order, although the server cut the stream.
        assert follower.ids() == await all_event_ids(api, pool)
        assert len(follower.ids()) == 1 + 6 * 3
        assert follower.stream.connections >= 3

        await aw(api.delete_pool(pool))
        await eventually(follower.ended.is_set, what="the stream ends with its pool")
        assert follower.error is None
    finally:
        for each in closing:
            await each.close()
        await close_api(api)



async def take(stream: Union[EventStream, AsyncEventStream], count: int) -> List[Followed]:
    """The next ``count`` events of the stream, iterating it the flavour's way and leaving
    the loop (``break``) once it has them."""
    taken: List[Followed] = []
    if isinstance(stream, AsyncEventStream):
        async for followed in stream:
            taken.append(followed)
            if len(taken) == count:
                break
    else:
        for followed in stream:
            taken.append(followed)
            if len(taken) == count:
                break
    return taken


async def close_stream(stream: Union[EventStream, AsyncEventStream]) -> None:
    if isinstance(stream, AsyncEventStream):
        await stream.aclose()
    else:
        stream.close()


def ids_of(events: List[Followed]) -> List[str]:
    return [e["id"] for e in events if not isinstance(e, Trimmed)]


async def test_nothing_is_yielded_after_close(flavour: str, api: Api) -> None:
    pool = unique("closed")
    # Four events, which the stream sends together (one read may well hold them all).
    await aw(api.add_items(pool, ["a", "b", "c", "d"]))
    every = await all_event_ids(api, pool)
    assert len(every) == 4

    # Closed from the loop's own body, after the first event.
    first: List[Followed] = []
    stream = api.follow_events(pool)
    if isinstance(stream, AsyncEventStream):
        async for followed in stream:
            first.append(followed)
            await stream.aclose()
    else:
        for followed in stream:
            first.append(followed)
            stream.close()
    assert ids_of(first) == every[:1] and stream.closed
    assert await take(stream, 1) == []  # and nothing after, however it is asked

    # Closed from another thread (task) while the consumer holds the first event.
    consumed: List[Followed] = []
    holding = threading.Event()
    closed = threading.Event()
    second = api.follow_events(pool)
    if isinstance(second, AsyncEventStream):

        async def consume_async(stream: AsyncEventStream) -> None:
            async for followed in stream:
                consumed.append(followed)
                holding.set()
                await eventually(closed.is_set, what="the stream is closed")

        consumer = asyncio.get_running_loop().create_task(consume_async(second))
        await eventually(holding.is_set, what="the first event")
        await second.aclose()
        closed.set()
        await asyncio.wait_for(consumer, 5)
    else:

        def consume(stream: EventStream) -> None:
            for followed in stream:
                consumed.append(followed)
                holding.set()
                closed.wait(5)

        thread = threading.Thread(target=consume, args=(second,), daemon=True)
        thread.start()
        await eventually(holding.is_set, what="the first event")
        second.close()
        closed.set()
        thread.join(5)
        assert not thread.is_alive()
    assert ids_of(consumed) == every[:1]

    # A new stream goes on from where a closed one stopped.
    third = api.follow_events(pool, after=second.last_event_id)
    try:
        assert ids_of(await take(third, 3)) == every[1:]
    finally:
        await close_stream(third)


async def test_iterating_again_after_a_break_goes_on_after_the_last_event(api: Api) -> None:
    pool = unique("break")
    await aw(api.add_items(pool, ["a", "b", "c"]))
    stream = api.follow_events(pool)
    try:
        first = await take(stream, 1)
        assert not stream.closed
        rest = await take(stream, 2)
        assert ids_of(first + rest) == await all_event_ids(api, pool)
        # And on with what happens next, live.
        await aw(api.add_items(pool, ["d"]))
        (live,) = await take(stream, 1)
        assert not isinstance(live, Trimmed) and live["item"] == "d"
        assert stream.last_event_id == live["id"]
        assert stream.connections == 1
    finally:
        await close_stream(stream)


async def test_an_event_already_received_when_the_stream_is_closed_is_not_yielded(
    dev: DevServer,
) -> None:
    """The race behind "nothing after close", made certain: the event has reached the
    connection before the stream is closed, but the consumer (a task waiting on the
    stream) has not read it yet."""
    api = AsyncClient(dev.url)
    pool = unique("race")
    yielded: List[Followed] = []
    try:
        await api.add_items(pool, ["a"])
        stream = api.follow_events(pool)

        async def consume() -> None:
            async for followed in stream:
                yielded.append(followed)

        consumer = asyncio.get_running_loop().create_task(consume())
        await eventually(lambda: len(yielded) == 1, what="the first event")
        # The consumer now waits in the middle of reading. From here until the stream is
        # closed, the event loop does not run (the calls block), so the consumer cannot
        # read what comes: the next event is added, and is waited for on the connection.
        with Client(dev.url) as blocking:
            blocking.add_items(pool, ["b"])
        response = stream._response
        assert response is not None
        sock = response.extensions["network_stream"].get_extra_info("socket")
        readable, _, _ = select.select([sock], [], [], 5.0)
        assert readable, "the event did not reach the connection"
        await stream.aclose()
        await asyncio.wait_for(consumer, 5)
        assert [e["item"] for e in yielded if not isinstance(e, Trimmed)] == ["a"]
    finally:
        await api.aclose()
