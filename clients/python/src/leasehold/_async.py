"""The asyncio client: :class:`AsyncClient`, its lease guard :class:`AsyncLease` (renewed
by a background task) and :class:`AsyncEventStream` (an async iterator over a pool's live
events). Each mirrors its blocking counterpart in ``_sync``, method for method: the
requests and answers are built and read by the same code (``_calls``, ``_http``)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import weakref
from datetime import datetime
from types import TracebackType
from typing import (
    Any,
    AsyncGenerator,
    AsyncIterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
)

import httpx

from . import _calls
from ._calls import UNSET, IfMatch, Unset
from ._errors import LeaseholdError
from ._http import (
    LONGEST_WAIT,
    Answer,
    Attempts,
    Call,
    NoAnswer,
    Outcome,
    RetryCounter,
    check_header_value,
    check_idempotency_key,
    clean_base_url,
    client_headers,
    timeouts,
)
from ._lease_time import (
    deciding_time,
    is_refusal,
    local_expiry,
    parse_time,
    pause_after_failure,
)
from ._retry import DEFAULT_RETRIES, RetryPolicy
from ._sse import Parser, read_message
from ._types import (
    AddedItems,
    CounterDraw,
    CounterValue,
    Data,
    EventPage,
    Followed,
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
    Trimmed,
)
from ._version import __version__

log = logging.getLogger("leasehold")

_USER_AGENT = f"leasehold-python/{__version__}"


class _Shared:
    """What a client and every handle made from it share."""

    def __init__(
        self,
        base_url: str,
        api_key: Optional[str],
        timeout: float,
        policy: RetryPolicy,
    ) -> None:
        self.base_url = clean_base_url(base_url)
        self.headers = client_headers(api_key, _USER_AGENT)
        self.timeout = float(timeout)
        self.policy = policy
        self.counter = RetryCounter()
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=timeouts(self.timeout))


class _Interrupted(Exception):
    """A wait that was cut short (an event stream closed while it waited to reconnect)."""


async def _sleep_unless(event: asyncio.Event, delay: float) -> bool:
    """Sleeps ``delay`` seconds; true if ``event`` was set before (or during) it."""
    if event.is_set():
        return True
    try:
        await asyncio.wait_for(event.wait(), delay)
    except asyncio.TimeoutError:
        return False
    return True


class AsyncClient:
    """An asyncio client of one Leasehold deployment: :class:`~leasehold.Client`'s methods,
    as coroutines, with the same arguments, answers, retries and idempotency. Use it as
    an async context manager (``async with``), or call :meth:`aclose`.

    Cancelling the task that awaits a call ends it at once, also while it waits to retry
    (a write cancelled once sent may have been applied). Invalid header values raise
    :class:`ValueError` when the call is awaited, before anything is sent."""

    def __init__(
        self,
        base_url: str,
        api_key: Optional[str] = None,
        timeout: float = 10.0,
        retries: Union[RetryPolicy, int] = DEFAULT_RETRIES,
    ) -> None:
        self._shared = _Shared(base_url, api_key, timeout, RetryPolicy.of(retries))
        self._key: Optional[str] = None
        self._owner = True

    @classmethod
    def _handle(cls, shared: _Shared, key: Optional[str]) -> AsyncClient:
        handle = cls.__new__(cls)
        handle._shared = shared
        handle._key = key
        handle._owner = False
        return handle

    # -- Settings and lifetime -----------------------------------------------------------

    def with_idempotency_key(self, key: str) -> AsyncClient:
        """A handle whose writes all carry ``key`` as their ``Idempotency-Key``, sharing
        this client's connections (see :meth:`Client.with_idempotency_key`)."""
        check_idempotency_key(key)
        return AsyncClient._handle(self._shared, key)

    def _fresh(self) -> AsyncClient:
        return AsyncClient._handle(self._shared, None)

    @property
    def idempotency_key(self) -> Optional[str]:
        return self._key

    @property
    def base_url(self) -> str:
        return self._shared.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._shared.policy

    @property
    def retries(self) -> int:
        """How many retries this client and its handles have made, over all calls."""
        return self._shared.counter.count

    async def aclose(self) -> None:
        """Closes the connections (a no-op on a handle)."""
        if self._owner:
            await self._shared.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    # -- Sending -------------------------------------------------------------------------

    async def _send(self, call: Call, policy: Optional[RetryPolicy] = None) -> Answer:
        shared = self._shared
        call = call.keyed(self._key)
        attempts = Attempts(call, policy or shared.policy, shared.timeout, shared.counter)
        while True:
            outcome = await self._attempt(call, attempts)
            wait = attempts.next_wait(outcome)
            if wait is None:
                return attempts.finish(outcome)
            log.debug("%s %s: sending again in %.3f s", call.method, call.path, wait)
            await asyncio.sleep(wait)

    async def _attempt(self, call: Call, attempts: Attempts) -> Outcome:
        shared = self._shared
        try:
            response = await shared.http.request(
                call.method,
                shared.base_url + call.path,
                content=call.body,
                headers=attempts.headers(shared.headers),
                timeout=timeouts(attempts.attempt_timeout()),
            )
        except httpx.TransportError as e:
            return NoAnswer(e)
        return Answer(response.status_code, response.headers, response.content)

    async def _open(self, call: Call, interrupt: asyncio.Event) -> httpx.Response:
        """As :meth:`Client._open`."""
        shared = self._shared
        attempts = Attempts(call, shared.policy, shared.timeout, shared.counter)
        while True:
            outcome: Outcome
            try:
                request = shared.http.build_request(
                    call.method,
                    shared.base_url + call.path,
                    headers=attempts.headers(shared.headers),
                    timeout=timeouts(
                        attempts.attempt_timeout(), read=shared.timeout + LONGEST_WAIT
                    ),
                )
                response = await shared.http.send(request, stream=True)
            except httpx.TransportError as e:
                outcome = NoAnswer(e)
            else:
                if 200 <= response.status_code < 300:
                    return response
                try:
                    body = await response.aread()
                    outcome = Answer(response.status_code, response.headers, body)
                except httpx.TransportError as e:
                    outcome = NoAnswer(e)
                finally:
                    await response.aclose()
            wait = attempts.next_wait(outcome)
            if wait is None:
                raise attempts.error(outcome)
            if await _sleep_unless(interrupt, wait):
                raise _Interrupted()

    # -- Service -------------------------------------------------------------------------

    async def ready(self) -> None:
        """``GET /readyz``: returns when the service can serve."""
        await self._send(_calls.ready())

    async def tenant(self) -> TenantInfo:
        """``GET /v1/tenant``."""
        return _calls.as_tenant(await self._send(_calls.tenant()))

    # -- Pools ---------------------------------------------------------------------------

    async def put_pool(
        self,
        pool: str,
        settings: Optional[PoolSettings] = None,
        *,
        lease_ms: Optional[int] = None,
        max_leases_per_holder: Optional[int] = None,
        max_attempts: Optional[int] = None,
        require_if_match: Optional[bool] = None,
        max_events: Optional[int] = None,
        keep_done_ms: Union[int, None, Unset] = UNSET,
        keep_dead_ms: Union[int, None, Unset] = UNSET,
        paused: Optional[bool] = None,
    ) -> Pool:
        """As :meth:`Client.put_pool`."""
        body = _calls.pool_settings(
            settings,
            lease_ms=lease_ms,
            max_leases_per_holder=max_leases_per_holder,
            max_attempts=max_attempts,
            require_if_match=require_if_match,
            max_events=max_events,
            keep_done_ms=keep_done_ms,
            keep_dead_ms=keep_dead_ms,
            paused=paused,
        )
        return _calls.as_pool(await self._send(_calls.put_pool(pool, body)))

    async def get_pool(self, pool: str) -> Pool:
        """As :meth:`Client.get_pool`."""
        return _calls.as_pool(await self._send(_calls.get_pool(pool)))

    async def list_pools(
        self, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> PoolList:
        """As :meth:`Client.list_pools`."""
        return _calls.as_pool_list(await self._send(_calls.list_pools(limit, after)))

    async def delete_pool(self, pool: str) -> None:
        """As :meth:`Client.delete_pool`."""
        await self._send(_calls.delete_pool(pool))

    # -- Items ---------------------------------------------------------------------------

    async def add_items(self, pool: str, items: Sequence[Union[NewItem, str]]) -> AddedItems:
        """As :meth:`Client.add_items`."""
        return _calls.as_added(await self._send(_calls.add_items(pool, items)))

    async def get_item(self, pool: str, id: str) -> Tuple[Item, str]:
        """As :meth:`Client.get_item`: ``(item, etag)``."""
        return _calls.as_item_and_etag(await self._send(_calls.get_item(pool, id)))

    async def put_item(
        self,
        pool: str,
        id: str,
        data: Data,
        *,
        if_match: Optional[IfMatch] = None,
        if_none_match: Optional[str] = None,
        expected_version: Optional[int] = None,
        lease_token: Optional[int] = None,
        priority: Optional[int] = None,
    ) -> Item:
        """As :meth:`Client.put_item`."""
        call = _calls.put_item(
            pool,
            id,
            data,
            priority=priority,
            expected_version=expected_version,
            if_match=if_match,
            if_none_match=if_none_match,
            lease_token=lease_token,
        )
        return _calls.as_item(await self._send(call))

    async def patch_item(
        self,
        pool: str,
        id: str,
        patch: Mapping[str, Any],
        *,
        if_match: Optional[IfMatch] = None,
        if_none_match: Optional[str] = None,
        lease_token: Optional[int] = None,
    ) -> Item:
        """As :meth:`Client.patch_item`."""
        call = _calls.patch_item(
            pool,
            id,
            patch,
            if_match=if_match,
            if_none_match=if_none_match,
            lease_token=lease_token,
        )
        return _calls.as_item(await self._send(call))

    async def delete_item(
        self,
        pool: str,
        id: str,
        *,
        if_match: Optional[IfMatch] = None,
        if_none_match: Optional[str] = None,
        lease_token: Optional[int] = None,
    ) -> None:
        """As :meth:`Client.delete_item`."""
        call = _calls.delete_item(
            pool, id, if_match=if_match, if_none_match=if_none_match, lease_token=lease_token
        )
        await self._send(call)

    async def list_items(
        self,
        pool: str,
        *,
        state: Optional[ItemState] = None,
        holder: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> ItemPage:
        """As :meth:`Client.list_items`."""
        call = _calls.list_items(pool, state=state, holder=holder, limit=limit, cursor=cursor)
        return _calls.as_item_page(await self._send(call))

    async def assign_item(
        self,
        pool: str,
        id: str,
        holder: Optional[str],
        *,
        expected_version: Optional[int] = None,
        if_match: Optional[IfMatch] = None,
        lease_ms: Optional[int] = None,
    ) -> Item:
        """As :meth:`Client.assign_item`."""
        call = _calls.assign_item(
            pool,
            id,
            holder,
            expected_version=expected_version,
            if_match=if_match,
            lease_ms=lease_ms,
        )
        return _calls.as_item(await self._send(call))

    async def requeue_item(
        self,
        pool: str,
        id: str,
        *,
        priority: Optional[int] = None,
        delay_ms: Optional[int] = None,
        available_at: Optional[str] = None,
    ) -> Item:
        """As :meth:`Client.requeue_item`."""
        call = _calls.requeue_item(
            pool, id, priority=priority, delay_ms=delay_ms, available_at=available_at
        )
        return _calls.as_item(await self._send(call))

    # -- Leases --------------------------------------------------------------------------

    async def claim_next(
        self,
        pool: str,
        *,
        holder: str,
        count: Optional[int] = None,
        lease_ms: Optional[int] = None,
        wait_ms: Optional[int] = None,
        create: Optional[bool] = None,
    ) -> List[AsyncLease]:
        """As :meth:`Client.claim_next`: a list of :class:`AsyncLease`, each renewed by a
        task of the running event loop."""
        sent_at = time.monotonic()
        call = _calls.claim_next(
            pool, holder=holder, count=count, lease_ms=lease_ms, wait_ms=wait_ms, create=create
        )
        answer = await self._send(call)
        granted_after = None if answer.replayed else sent_at
        return [
            AsyncLease(self, pool, info, lease_ms, granted_after)
            for info in _calls.as_lease_infos(answer)
        ]

    async def claim_item(
        self, pool: str, id: str, *, holder: str, lease_ms: Optional[int] = None
    ) -> AsyncLease:
        """As :meth:`Client.claim_item`."""
        sent_at = time.monotonic()
        answer = await self._send(_calls.claim_item(pool, id, holder=holder, lease_ms=lease_ms))
        granted_after = None if answer.replayed else sent_at
        return AsyncLease(self, pool, _calls.as_lease_info(answer), lease_ms, granted_after)

    def adopt(self, pool: str, lease: LeaseInfo, lease_ms: Optional[int] = None) -> AsyncLease:
        """As :meth:`Client.adopt` (call it with an event loop running)."""
        return AsyncLease(self, pool, lease, lease_ms, None)

    async def renew(
        self, pool: str, id: str, *, holder: str, token: int, lease_ms: Optional[int] = None
    ) -> LeaseInfo:
        """As :meth:`Client.renew`."""
        return await self._renew_under(None, pool, id, holder, token, lease_ms)

    async def _renew_under(
        self,
        policy: Optional[RetryPolicy],
        pool: str,
        id: str,
        holder: str,
        token: int,
        lease_ms: Optional[int],
    ) -> LeaseInfo:
        call = _calls.renew(pool, id, holder=holder, token=token, lease_ms=lease_ms)
        return _calls.as_lease_info(await self._send(call, policy))

    async def release(
        self,
        pool: str,
        id: str,
        *,
        holder: str,
        token: int,
        delay_ms: Optional[int] = None,
        priority: Optional[int] = None,
    ) -> Item:
        """As :meth:`Client.release`."""
        call = _calls.release(
            pool, id, holder=holder, token=token, delay_ms=delay_ms, priority=priority
        )
        return _calls.as_item(await self._send(call))

    async def complete(
        self, pool: str, id: str, *, holder: str, token: int, data: Optional[Data] = None
    ) -> Item:
        """As :meth:`Client.complete`."""
        call = _calls.complete(pool, id, holder=holder, token=token, data=data)
        return _calls.as_item(await self._send(call))

    async def list_leases(
        self,
        pool: str,
        holder: str,
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> LeasePage:
        """As :meth:`Client.list_leases`."""
        call = _calls.list_leases(pool, holder, limit=limit, cursor=cursor)
        return _calls.as_lease_page(await self._send(call))

    # -- Counters ------------------------------------------------------------------------

    async def next_counter(
        self,
        name: str,
        *,
        count: Optional[int] = None,
        period: Optional[str] = None,
        tz: Optional[str] = None,
        format: Optional[str] = None,
    ) -> CounterDraw:
        """As :meth:`Client.next_counter`."""
        call = _calls.next_counter(name, count=count, period=period, tz=tz, format=format)
        return _calls.as_counter_draw(await self._send(call))

    async def get_counter(
        self, name: str, *, period: Optional[str] = None, tz: Optional[str] = None
    ) -> CounterValue:
        """As :meth:`Client.get_counter`."""
        call = _calls.get_counter(name, period=period, tz=tz)
        return _calls.as_counter_value(await self._send(call))

    # -- Events --------------------------------------------------------------------------

    async def list_events(
        self, pool: str, *, after: Optional[str] = None, limit: Optional[int] = None
    ) -> EventPage:
        """As :meth:`Client.list_events`."""
        call = _calls.list_events(pool, after=after, limit=limit)
        return _calls.as_event_page(await self._send(call))

    def follow_events(self, pool: str, *, after: Optional[str] = None) -> AsyncEventStream:
        """As :meth:`Client.follow_events`: an :class:`AsyncEventStream` (``async for``)."""
        return AsyncEventStream(self, pool, after)


# -- Leases ---------------------------------------------------------------------------------

_RENEWING = "renewing"
_STOPPED = "stopped"
_SETTLED = "settled"
_LOST = "lost"
_ABANDONED = "abandoned"


class _AsyncGuard:
    """The part of an :class:`AsyncLease` that its renewing task shares (as ``_sync``'s
    ``_Guard``, with a task that is cancelled where the thread is woken). It belongs to
    the event loop it was made in; only :meth:`abandon` may be called from elsewhere."""

    def __init__(
        self,
        client: AsyncClient,
        pool: str,
        info: LeaseInfo,
        lease_ms: Optional[int],
        granted_after: Optional[float],
    ) -> None:
        self.client = client
        self.pool = pool
        self.id = info["id"]
        self.holder = info["holder"]
        self.token = info["token"]
        self.lease_ms = lease_ms
        self.loop = asyncio.get_running_loop()
        self.mode = _RENEWING
        self.latest = info
        self.lost = asyncio.Event()
        self.lost_reason: Optional[str] = None
        self.lost_error: Optional[LeaseholdError] = None
        self.deciding = deciding_time(info, lease_ms)
        if granted_after is not None:
            self.ends = local_expiry(info, lease_ms, granted_after)
        else:
            self.ends = local_expiry(info, None, time.monotonic())
        self.period: Optional[Tuple[float, float]] = None
        if granted_after is not None and self.ends is not None:
            self.period = (granted_after, self.ends)
        self.task: Optional[asyncio.Task[None]] = None
        self.watch: Optional[asyncio.TimerHandle] = None
        if info.get("lease_expires_at") is not None:
            self.task = self.loop.create_task(
                self._run(), name=f"leasehold-lease-{pool}/{self.id}"
            )

    def _cancel_task(self) -> None:
        task = self.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _cancel_watch(self) -> None:
        if self.watch is not None:
            self.watch.cancel()
            self.watch = None

    def _schedule_watch(self) -> None:
        """While stopped: set ``lost`` once the lease runs out by the holder's clock."""
        self._cancel_watch()
        if self.mode == _STOPPED and self.ends is not None:
            delay = max(self.ends - time.monotonic(), 0.0)
            self.watch = self.loop.call_later(delay, self._expire_if_stopped)

    def _expire_if_stopped(self) -> None:
        self.watch = None
        if self.mode != _STOPPED or self.ends is None:
            return
        if time.monotonic() < self.ends:
            self._schedule_watch()  # renewed by hand meanwhile
            return
        self.lose("expired: renewal was stopped and the lease ran out", None)

    def stop(self) -> None:
        if self.mode == _RENEWING:
            self.mode = _STOPPED
            self._cancel_task()
            if self.task is not None:
                self._schedule_watch()

    def settle(self) -> None:
        if self.mode in (_RENEWING, _STOPPED):
            self.mode = _SETTLED
            self._cancel_task()
            self._cancel_watch()

    def abandon(self) -> None:
        """The :class:`AsyncLease` was collected: stop renewing (from any thread)."""
        try:
            self.loop.call_soon_threadsafe(self._abandon)
        except RuntimeError:
            pass  # the loop is closed: nothing runs any more

    def _abandon(self) -> None:
        if self.mode in (_RENEWING, _STOPPED):
            self.mode = _ABANDONED
            self._cancel_task()
            self._cancel_watch()

    def renewed(self, info: LeaseInfo, ends: Optional[float]) -> None:
        self.latest = info
        self.ends = ends
        if self.mode == _STOPPED:
            self._schedule_watch()

    def lose(self, reason: str, error: Optional[LeaseholdError], *, force: bool = False) -> None:
        if self.mode == _LOST or (not force and self.mode not in (_RENEWING, _STOPPED)):
            return
        self.mode = _LOST
        self.lost_reason, self.lost_error = reason, error
        self._cancel_task()
        self._cancel_watch()
        log.debug("lease on %s/%s lost: %s", self.pool, self.id, reason)
        self.lost.set()

    async def _run(self) -> None:
        """Renews at a third of each lease period until the lease is lost, or the task is
        cancelled (stopped, settled, abandoned)."""
        try:
            await self._renew()
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - a fault of this client's
            log.exception("lease on %s/%s: the renewing task failed", self.pool, self.id)

    async def _renew(self) -> None:
        period = self.period
        renewed_here = False
        while True:
            if period is not None:
                began, ends = period
                await asyncio.sleep(max(began + (ends - began) / 3.0 - time.monotonic(), 0.0))
            tried = False
            while True:
                now = time.monotonic()
                live_ends = period[1] if period is not None and now < period[1] else None
                if live_ends is not None:
                    policy = self.client.retry_policy.with_max_elapsed(live_ends - now)
                elif tried or renewed_here:
                    self.lose("expired: no renewal succeeded before the lease ran out", None)
                    return
                else:
                    policy = self.client.retry_policy.with_max_elapsed(self.deciding)
                tried = True
                try:
                    info = await self.client._renew_under(
                        policy, self.pool, self.id, self.holder, self.token, self.lease_ms
                    )
                except LeaseholdError as e:
                    if is_refusal(e.status, e.gave_up):
                        self.lose(f"refused: {e}", e)
                        return
                    # Not a refusal (see `_sync`): again while there is time.
                    log.debug("lease on %s/%s: renewal failed: %s", self.pool, self.id, e)
                    left = max(live_ends - time.monotonic(), 0.0) if live_ends else 0.0
                    await asyncio.sleep(pause_after_failure(left, e.retry_after))
                    continue
                next_ends = local_expiry(info, self.lease_ms, now)
                self.renewed(info, next_ends)
                if next_ends is None:
                    return
                period, renewed_here = (now, next_ends), True
                break


class AsyncLease:
    """A lease on one item, renewed by a task of the event loop until it is completed,
    released, stopped, or lost: :class:`~leasehold.Lease` for asyncio. ``lost`` is an
    :class:`asyncio.Event`; ``renew``, ``complete`` and ``release`` are coroutines; as an
    async context manager (``async with lease:``) it releases the item on exit unless it
    was completed, released or lost."""

    def __init__(
        self,
        client: AsyncClient,
        pool: str,
        info: LeaseInfo,
        lease_ms: Optional[int],
        granted_after: Optional[float],
    ) -> None:
        if lease_ms is None and info.get("lease_expires_at") is None:
            # A lease without expiry (adopted, or granted under a pool whose lease time is
            # 0): renewing it sends lease_ms 0, so that it stays without expiry rather
            # than taking the pool's lease time.
            lease_ms = 0
        self._client = client._fresh()
        self._pool = pool
        self._granted = info
        self._lease_ms = lease_ms
        self._finished = False
        self._guard = _AsyncGuard(self._client, pool, info, lease_ms, granted_after)
        self.lost: asyncio.Event = self._guard.lost
        weakref.finalize(self, self._guard.abandon)

    def __repr__(self) -> str:
        return (
            f"AsyncLease(pool={self._pool!r}, id={self.id!r}, holder={self.holder!r}, "
            f"token={self.token}, lost={self.lost.is_set()})"
        )

    @property
    def pool(self) -> str:
        return self._pool

    @property
    def id(self) -> str:
        return self._granted["id"]

    @property
    def token(self) -> int:
        """The fencing token."""
        return self._granted["token"]

    @property
    def holder(self) -> str:
        return self._granted["holder"]

    @property
    def data(self) -> Data:
        return self._granted["data"]

    @property
    def priority(self) -> int:
        return self._granted["priority"]

    @property
    def attempts(self) -> int:
        return self._granted["attempts"]

    @property
    def info(self) -> LeaseInfo:
        """The lease as last granted or renewed (its canonical JSON)."""
        return self._guard.latest

    @property
    def version(self) -> int:
        return self.info["version"]

    @property
    def expires_at(self) -> Optional[datetime]:
        expires = self.info["lease_expires_at"]
        return parse_time(expires) if expires is not None else None

    @property
    def lost_reason(self) -> Optional[str]:
        return self._guard.lost_reason

    @property
    def lost_error(self) -> Optional[LeaseholdError]:
        return self._guard.lost_error

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def renewing(self) -> bool:
        return self._guard.mode == _RENEWING and self._guard.task is not None

    async def renew(self, lease_ms: Optional[int] = None) -> LeaseInfo:
        """As :meth:`Lease.renew`."""
        lease_ms = lease_ms if lease_ms is not None else self._lease_ms
        sent_at = time.monotonic()
        try:
            info = await self._client.renew(
                self._pool, self.id, holder=self.holder, token=self.token, lease_ms=lease_ms
            )
        except LeaseholdError as e:
            if is_refusal(e.status, e.gave_up):
                self._guard.lose(f"refused: {e}", e)
            raise
        self._guard.renewed(info, local_expiry(info, lease_ms, sent_at))
        return info

    async def complete(self, data: Optional[Data] = None) -> Item:
        """As :meth:`Lease.complete`."""
        self._finish()
        try:
            return await self._client.complete(
                self._pool, self.id, holder=self.holder, token=self.token, data=data
            )
        except LeaseholdError as e:
            self._lost_by(e)
            raise

    async def release(
        self, delay_ms: Optional[int] = None, priority: Optional[int] = None
    ) -> Item:
        """As :meth:`Lease.release`."""
        self._finish()
        try:
            return await self._client.release(
                self._pool,
                self.id,
                holder=self.holder,
                token=self.token,
                delay_ms=delay_ms,
                priority=priority,
            )
        except LeaseholdError as e:
            self._lost_by(e)
            raise

    def stop(self) -> None:
        """As :meth:`Lease.stop`."""
        self._guard.stop()

    def _finish(self) -> None:
        self._finished = True
        self._guard.settle()

    def _lost_by(self, error: LeaseholdError) -> None:
        if error.code == "lease_lost":
            self._guard.lose(f"refused: {error}", error, force=True)

    async def __aenter__(self) -> AsyncLease:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._finished or self.lost.is_set():
            self._guard.settle()
            return
        try:
            await self.release()
        except LeaseholdError as e:
            log.warning("lease on %s/%s: could not release it: %s", self._pool, self.id, e)


# -- Events ---------------------------------------------------------------------------------


class AsyncEventStream:
    """A pool's live events as an async iterator: :class:`~leasehold.EventStream` for
    asyncio (``async for event in stream``). :meth:`aclose` (or leaving ``async with``)
    ends it, also while another task is waiting on it: nothing is yielded after it. As
    with the blocking stream, leaving an ``async for`` (``break``) does not close it, and
    iterating it again goes on after the last event yielded; cancelling the task that
    waits on it ends the stream (a new one goes on from :attr:`last_event_id`)."""

    def __init__(self, client: AsyncClient, pool: str, after: Optional[str]) -> None:
        if after is not None:
            check_header_value("Last-Event-ID", after)
        self._client = client
        self._pool = pool
        self.last_event_id: Optional[str] = after
        self.connections = 0
        self._closed = asyncio.Event()
        self._response: Optional[httpx.Response] = None
        self._events = self._follow()

    def __aiter__(self) -> AsyncIterator[Followed]:
        return self

    async def __anext__(self) -> Followed:
        if self._closed.is_set():
            try:
                await self._events.aclose()
            except RuntimeError:
                pass  # another task is in the middle of reading it: it stops by itself
            raise StopAsyncIteration
        return await self._events.__anext__()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def aclose(self) -> None:
        """Ends the stream: the iteration stops, also if another task is reading it."""
        self._closed.set()
        if self._response is not None:
            _cut(self._response)
        try:
            await self._events.aclose()
        except RuntimeError:
            pass  # being iterated by another task: it stops by itself, as cut

    async def _follow(self) -> AsyncGenerator[Followed, None]:
        opened = False
        idle_ends = 0
        policy = self._client.retry_policy
        while not self._closed.is_set():
            if idle_ends > 1 and await _sleep_unless(self._closed, policy.delay(idle_ends - 2)):
                return
            call = _calls.events_stream(self._pool, self.last_event_id)
            try:
                response = await self._client._open(call, self._closed)
            except _Interrupted:
                return
            except LeaseholdError as e:
                if self._closed.is_set() or (opened and e.code == "not_found"):
                    return
                raise
            opened = True
            self.connections += 1
            self._response = response
            if self._closed.is_set():
                await response.aclose()
                return
            parser = Parser()
            try:
                async for chunk in response.aiter_raw():
                    for message in parser.feed(chunk):
                        # Closed meanwhile (by another task): what was read already is
                        # not yielded.
                        if self._closed.is_set():
                            return
                        followed = read_message(message)
                        if not isinstance(followed, Trimmed):
                            self.last_event_id = followed["id"]
                        idle_ends = 0
                        yield followed
                        if self._closed.is_set():
                            return
            except (httpx.HTTPError, OSError) as e:
                log.debug("event stream of %s broke: %s", self._pool, e)
            finally:
                self._response = None
                await response.aclose()
            idle_ends += 1


def _cut(response: httpx.Response) -> None:
    """Cuts a streaming response's connection at once: the reading task sees it end."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    # A socket.socket, or asyncio's TransportSocket wrapper of one: both can shut down.
    shutdown = getattr(sock, "shutdown", None)
    if callable(shutdown):
        try:
            shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


__all__ = ["AsyncClient", "AsyncLease", "AsyncEventStream"]
