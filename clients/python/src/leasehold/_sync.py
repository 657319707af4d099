"""The blocking client: :class:`Client`, its lease guard :class:`Lease` (renewed by a
background thread) and :class:`EventStream` (an iterator over a pool's live events)."""

from __future__ import annotations

import logging
import socket
import threading
import time
import weakref
from datetime import datetime
from types import TracebackType
from typing import Any, Generator, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, Union

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
    LONGEST_GUARD_WAIT,
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
    """What a client and every handle made from it share: the connections, settings and
    retry count."""

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
        self.http = httpx.Client(follow_redirects=False, timeout=timeouts(self.timeout))


class _Interrupted(Exception):
    """A wait that was cut short (an event stream closed while it waited to reconnect)."""


class Client:
    """A blocking client of one Leasehold deployment; safe to share between threads.

    Args:
        base_url: where the service is, such as ``"http://127.0.0.1:8080"`` (a path
            prefix is kept).
        api_key: the API key (sent as ``Authorization: Bearer``); ``None`` for
            ``leasehold dev``, which needs none.
        timeout: how long, in seconds, one attempt may wait for connecting (at most 5 s),
            for sending, and for each read of the answer. A long-poll claim gets its
            ``wait_ms`` on top; an event stream may be silent for this plus 30 s.
        retries: how requests are retried: a :class:`RetryPolicy`, or a number of
            retries with the default delays (``0``: never retry). The default is 5
            attempts, backoff from 0.1 s up to 5 s with full jitter, 30 s in all.

    Every write carries an ``Idempotency-Key`` (a UUID v4) that its retries reuse, so the
    service applies it once and replays its answer. Requests are retried on no answer
    (connection refused or broken, timeout), 429, 502, 503 and 504, honouring
    ``Retry-After``; never on another 4xx. Use it as a context manager, or call
    :meth:`close`, to close its connections.

    A call cannot be interrupted from another thread: it ends within about the retry
    policy's ``max_elapsed`` (30 s by default; plus ``wait_ms`` for a long-poll claim),
    retries and their waits included. Use a client with a shorter policy for a tighter
    bound.

    Arguments the client can check itself raise :class:`ValueError` before anything is
    sent: header values (``if_match``, ``if_none_match``, the API key, a stream's
    ``after``) that are not printable ASCII (a CR, LF, other control or non-ASCII
    character), an ``Idempotency-Key`` that is not 1 to 128 visible ASCII characters.
    """

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
    def _handle(cls, shared: _Shared, key: Optional[str]) -> Client:
        handle = cls.__new__(cls)
        handle._shared = shared
        handle._key = key
        handle._owner = False
        return handle

    # -- Settings and lifetime -----------------------------------------------------------

    def with_idempotency_key(self, key: str) -> Client:
        """A handle whose writes all carry ``key`` as their ``Idempotency-Key`` instead of
        a fresh one per call, sharing this client's connections: for a call that must be
        applied once even when the process making it is retried (an incoming request's
        id, a job id). Use it for one logical call: the same key on a different request
        is refused with ``idempotency_key_reused``. (Keys are scoped per pool and per
        counter, so one key may serve one call on each.) Leases it claims renew and
        finish with fresh keys. Closing a handle does not close the shared connections."""
        check_idempotency_key(key)
        return Client._handle(self._shared, key)

    def _fresh(self) -> Client:
        """A handle with a fresh ``Idempotency-Key`` per write again."""
        return Client._handle(self._shared, None)

    @property
    def idempotency_key(self) -> Optional[str]:
        """The key this handle's writes carry, or ``None`` for a fresh one per write."""
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

    def close(self) -> None:
        """Closes the connections (a no-op on a handle from
        :meth:`with_idempotency_key`)."""
        if self._owner:
            self._shared.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    # -- Sending -------------------------------------------------------------------------

    def _send(self, call: Call, policy: Optional[RetryPolicy] = None) -> Answer:
        """Sends ``call`` under ``policy`` (the client's by default), again while the
        outcome is retryable: the 2xx answer, or raises :class:`LeaseholdError`."""
        shared = self._shared
        call = call.keyed(self._key)
        attempts = Attempts(call, policy or shared.policy, shared.timeout, shared.counter)
        while True:
            outcome = self._attempt(call, attempts)
            wait = attempts.next_wait(outcome)
            if wait is None:
                return attempts.finish(outcome)
            log.debug("%s %s: sending again in %.3f s", call.method, call.path, wait)
            time.sleep(wait)

    def _attempt(self, call: Call, attempts: Attempts) -> Outcome:
        shared = self._shared
        try:
            response = shared.http.request(
                call.method,
                shared.base_url + call.path,
                content=call.body,
                headers=attempts.headers(shared.headers),
                timeout=timeouts(attempts.attempt_timeout()),
            )
        except httpx.TransportError as e:
            return NoAnswer(e)
        return Answer(response.status_code, response.headers, response.content)

    def _open(self, call: Call, interrupt: threading.Event) -> httpx.Response:
        """Opens a streaming answer: sends ``call`` as :meth:`_send` does, and hands back
        the first 2xx response with its body unread. No total timeout applies (the body
        does not end by itself); each read may wait the timeout plus
        :data:`LONGEST_WAIT`. Raises :class:`_Interrupted` when ``interrupt`` is set while
        it waits to retry."""
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
                response = shared.http.send(request, stream=True)
            except httpx.TransportError as e:
                outcome = NoAnswer(e)
            else:
                if 200 <= response.status_code < 300:
                    return response
                try:
                    outcome = Answer(response.status_code, response.headers, response.read())
                except httpx.TransportError as e:
                    outcome = NoAnswer(e)
                finally:
                    response.close()
            wait = attempts.next_wait(outcome)
            if wait is None:
                raise attempts.error(outcome)
            if interrupt.wait(wait):
                raise _Interrupted()

    # -- Service -------------------------------------------------------------------------

    def ready(self) -> None:
        """``GET /readyz``: returns when the service can serve (Redis answers, scripts
        loaded); raises :class:`LeaseholdError` (503) when it cannot."""
        self._send(_calls.ready())

    def tenant(self) -> TenantInfo:
        """``GET /v1/tenant``: the caller's tenant, its pool count and its limits."""
        return _calls.as_tenant(self._send(_calls.tenant()))

    # -- Pools ---------------------------------------------------------------------------

    def put_pool(
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
        """``PUT /v1/pools/{pool}``: creates the pool, or changes the settings given (as a
        dict, keyword arguments, or both); the others keep their value. ``keep_done_ms`` /
        ``keep_dead_ms`` set to ``None`` keep finished items for ever. Returns the pool."""
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
        return _calls.as_pool(self._send(_calls.put_pool(pool, body)))

    def get_pool(self, pool: str) -> Pool:
        """``GET /v1/pools/{pool}``: its settings, counts, stats and usage (404
        ``not_found`` if it does not exist)."""
        return _calls.as_pool(self._send(_calls.get_pool(pool)))

    def list_pools(self, *, limit: Optional[int] = None, after: Optional[str] = None) -> PoolList:
        """``GET /v1/pools``: one page (``limit`` 1..1000, default 100) of this tenant's
        pools by name, after the name ``after``; pass ``next_after`` for the next page
        (``None`` on the last)."""
        return _calls.as_pool_list(self._send(_calls.list_pools(limit, after)))

    def delete_pool(self, pool: str) -> None:
        """``DELETE /v1/pools/{pool}``: the pool and everything in it (404 if missing)."""
        self._send(_calls.delete_pool(pool))

    # -- Items ---------------------------------------------------------------------------

    def add_items(self, pool: str, items: Sequence[Union[NewItem, str]]) -> AddedItems:
        """``POST /v1/pools/{pool}/items``: adds 1 to 1000 items (each a :class:`NewItem`
        dict, or just an id); items already there are left untouched. Creates the pool if
        needed."""
        return _calls.as_added(self._send(_calls.add_items(pool, items)))

    def get_item(self, pool: str, id: str) -> Tuple[Item, str]:
        """``GET`` an item: ``(item, etag)``, the ETag as the header gives it (``'"3"'``),
        ready for ``if_match``."""
        return _calls.as_item_and_etag(self._send(_calls.get_item(pool, id)))

    def put_item(
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
        """``PUT`` an item: creates it or replaces its data (and priority).

        Preconditions: ``if_match`` (an ETag from :meth:`get_item`, or a version; else 412
        ``precondition_failed``), ``if_none_match="*"`` (only if it does not exist),
        ``expected_version`` (else 409 ``version_conflict``; 0: must not exist),
        ``lease_token`` (only while that lease is current, else 409 ``lease_lost``)."""
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
        return _calls.as_item(self._send(call))

    def patch_item(
        self,
        pool: str,
        id: str,
        patch: Mapping[str, Any],
        *,
        if_match: Optional[IfMatch] = None,
        if_none_match: Optional[str] = None,
        lease_token: Optional[int] = None,
    ) -> Item:
        """``PATCH`` an item's data with a JSON merge patch (RFC 7396: ``None`` removes a
        key), under the same preconditions as :meth:`put_item`; 404 if it is missing."""
        call = _calls.patch_item(
            pool,
            id,
            patch,
            if_match=if_match,
            if_none_match=if_none_match,
            lease_token=lease_token,
        )
        return _calls.as_item(self._send(call))

    def delete_item(
        self,
        pool: str,
        id: str,
        *,
        if_match: Optional[IfMatch] = None,
        if_none_match: Optional[str] = None,
        lease_token: Optional[int] = None,
    ) -> None:
        """``DELETE`` an item, under the same preconditions as :meth:`put_item`."""
        call = _calls.delete_item(
            pool, id, if_match=if_match, if_none_match=if_none_match, lease_token=lease_token
        )
        self._send(call)

    def list_items(
        self,
        pool: str,
        *,
        state: Optional[ItemState] = None,
        holder: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> ItemPage:
        """One page of the pool's items (``limit`` 1..1000, default 100), of one ``state``
        or ``holder`` if given; pass ``next_cursor`` as ``cursor`` for the next page."""
        call = _calls.list_items(pool, state=state, holder=holder, limit=limit, cursor=cursor)
        return _calls.as_item_page(self._send(call))

    def assign_item(
        self,
        pool: str,
        id: str,
        holder: Optional[str],
        *,
        expected_version: Optional[int] = None,
        if_match: Optional[IfMatch] = None,
        lease_ms: Optional[int] = None,
    ) -> Item:
        """``PUT .../holder``: assigns the item to ``holder`` on their behalf (whoever had
        it loses it; the answer has the new ``token``), or with ``None`` takes it back
        (available again)."""
        call = _calls.assign_item(
            pool,
            id,
            holder,
            expected_version=expected_version,
            if_match=if_match,
            lease_ms=lease_ms,
        )
        return _calls.as_item(self._send(call))

    def requeue_item(
        self,
        pool: str,
        id: str,
        *,
        priority: Optional[int] = None,
        delay_ms: Optional[int] = None,
        available_at: Optional[str] = None,
    ) -> Item:
        """``POST .../requeue``: a done or dead item back to available (attempts reset), an
        available or delayed one available now; with ``delay_ms`` or ``available_at``,
        ``delayed`` until then instead. 409 ``already_leased`` for a leased item."""
        call = _calls.requeue_item(
            pool, id, priority=priority, delay_ms=delay_ms, available_at=available_at
        )
        return _calls.as_item(self._send(call))

    # -- Leases --------------------------------------------------------------------------

    def claim_next(
        self,
        pool: str,
        *,
        holder: str,
        count: Optional[int] = None,
        lease_ms: Optional[int] = None,
        wait_ms: Optional[int] = None,
        create: Optional[bool] = None,
    ) -> List[Lease]:
        """``POST /v1/pools/{pool}/claim``: leases the best ``count`` (1..100, default 1)
        available items to ``holder``, best first, each as a :class:`Lease` that renews
        itself; possibly none.

        ``lease_ms``: the lease time (the pool's by default; 0 for no expiry). ``wait_ms``
        (up to 30000): with nothing to grant, wait that long for an item (long poll); the
        call's timeout grows by as much. ``create=True``: a pool that does not exist yet
        counts as empty instead of 404."""
        sent_at = time.monotonic()
        call = _calls.claim_next(
            pool, holder=holder, count=count, lease_ms=lease_ms, wait_ms=wait_ms, create=create
        )
        answer = self._send(call)
        granted_after = None if answer.replayed else sent_at
        return [
            Lease(self, pool, info, lease_ms, granted_after)
            for info in _calls.as_lease_infos(answer)
        ]

    def claim_item(
        self, pool: str, id: str, *, holder: str, lease_ms: Optional[int] = None
    ) -> Lease:
        """``POST .../claim``: leases the named item to ``holder`` (renewing it, same
        token, if it is theirs already); 409 ``already_leased`` if another holder has it,
        ``invalid_state`` if it is done, dead or delayed."""
        sent_at = time.monotonic()
        answer = self._send(_calls.claim_item(pool, id, holder=holder, lease_ms=lease_ms))
        granted_after = None if answer.replayed else sent_at
        return Lease(self, pool, _calls.as_lease_info(answer), lease_ms, granted_after)

    def adopt(self, pool: str, lease: LeaseInfo, lease_ms: Optional[int] = None) -> Lease:
        """A :class:`Lease` guard for a lease this holder already has (from
        :meth:`list_leases` after a restart): it renews it at once, and from then on."""
        return Lease(self, pool, lease, lease_ms, None)

    def renew(
        self, pool: str, id: str, *, holder: str, token: int, lease_ms: Optional[int] = None
    ) -> LeaseInfo:
        """``POST .../renew``: extends the lease (by ``lease_ms``, or the pool's lease
        time), keeping its token; 409 ``lease_lost`` if it is no longer current."""
        return self._renew_under(None, pool, id, holder, token, lease_ms)

    def _renew_under(
        self,
        policy: Optional[RetryPolicy],
        pool: str,
        id: str,
        holder: str,
        token: int,
        lease_ms: Optional[int],
    ) -> LeaseInfo:
        call = _calls.renew(pool, id, holder=holder, token=token, lease_ms=lease_ms)
        return _calls.as_lease_info(self._send(call, policy))

    def release(
        self,
        pool: str,
        id: str,
        *,
        holder: str,
        token: int,
        delay_ms: Optional[int] = None,
        priority: Optional[int] = None,
    ) -> Item:
        """``POST .../release``: gives the item back, available at once or ``delayed`` for
        ``delay_ms``, optionally with a new priority."""
        call = _calls.release(
            pool, id, holder=holder, token=token, delay_ms=delay_ms, priority=priority
        )
        return _calls.as_item(self._send(call))

    def complete(
        self, pool: str, id: str, *, holder: str, token: int, data: Optional[Data] = None
    ) -> Item:
        """``POST .../complete``: the item is done (``data``, if given, replaces its data);
        a second complete is 409 ``lease_lost``."""
        call = _calls.complete(pool, id, holder=holder, token=token, data=data)
        return _calls.as_item(self._send(call))

    def list_leases(
        self,
        pool: str,
        holder: str,
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> LeasePage:
        """One page of the leases ``holder`` has now in the pool, in id order, with their
        tokens (to take them up again after a restart: see :meth:`adopt`)."""
        call = _calls.list_leases(pool, holder, limit=limit, cursor=cursor)
        return _calls.as_lease_page(self._send(call))

    # -- Counters ------------------------------------------------------------------------

    def next_counter(
        self,
        name: str,
        *,
        count: Optional[int] = None,
        period: Optional[str] = None,
        tz: Optional[str] = None,
        format: Optional[str] = None,
    ) -> CounterDraw:
        """``POST /v1/counters/{name}/next``: draws ``count`` (1..1000, default 1)
        contiguous values of the counter, per day (``period="day"``, the default, in
        ``tz``, UTC by default) or for ever (``period="none"``). With ``format`` (such as
        ``"CASE-{date}-{seq:05}"``) the answer also has the formatted ``ids``."""
        call = _calls.next_counter(name, count=count, period=period, tz=tz, format=format)
        return _calls.as_counter_draw(self._send(call))

    def get_counter(
        self, name: str, *, period: Optional[str] = None, tz: Optional[str] = None
    ) -> CounterValue:
        """``GET /v1/counters/{name}``: the last value issued in ``period``
        (``"YYYY-MM-DD"``, ``"none"``, or today in ``tz`` by default); 0 if none."""
        return _calls.as_counter_value(self._send(_calls.get_counter(name, period=period, tz=tz)))

    # -- Events --------------------------------------------------------------------------

    def list_events(
        self, pool: str, *, after: Optional[str] = None, limit: Optional[int] = None
    ) -> EventPage:
        """``GET /v1/pools/{pool}/events``: up to ``limit`` (1..1000, default 100) of the
        pool's events after the one with id ``after`` (from the oldest kept without it),
        oldest first. Pass ``next_after`` as ``after`` for the next page."""
        return _calls.as_event_page(self._send(_calls.list_events(pool, after=after, limit=limit)))

    def follow_events(self, pool: str, *, after: Optional[str] = None) -> EventStream:
        """The pool's events after the one with id ``after`` (from the oldest kept without
        it), then each new one as it happens, over Server-Sent Events: see
        :class:`EventStream`."""
        return EventStream(self, pool, after)


# -- Leases ---------------------------------------------------------------------------------

# What a guard is doing.
_RENEWING = "renewing"  # renewing at a third of each lease period
_STOPPED = "stopped"  # not renewing; `lost` is set when the lease runs out
_SETTLED = "settled"  # completed or released: nothing more to do
_LOST = "lost"  # the lease is gone (`lost` is set)
_ABANDONED = "abandoned"  # the Lease object was garbage-collected: nothing more to do


class _Guard:
    """The part of a :class:`Lease` that its renewing thread shares. It holds no reference
    to the :class:`Lease`, so a lease that its program drops is collected, and the
    thread then ends (the lease runs out by itself)."""

    def __init__(
        self,
        client: Client,
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
        self.cond = threading.Condition()
        self.mode = _RENEWING
        self.latest = info
        self.lost = threading.Event()
        self.lost_reason: Optional[str] = None
        self.lost_error: Optional[LeaseholdError] = None
        self.deciding = deciding_time(info, lease_ms)
        #: When the lease runs out by the holder's clock (``None``: it does not). For a
        #: lease of unknown age, by its ``lease_expires_at``.
        if granted_after is not None:
            self.ends = local_expiry(info, lease_ms, granted_after)
        else:
            self.ends = local_expiry(info, None, time.monotonic())
        # The period the first renewal is timed from: from the claim, when its age is
        # known; else none, and the guard renews at once (a replayed or adopted lease).
        self.period: Optional[Tuple[float, float]] = None
        if granted_after is not None and self.ends is not None:
            self.period = (granted_after, self.ends)

    # -- Called by the Lease (any thread) ------------------------------------------------

    def stop(self) -> None:
        with self.cond:
            if self.mode == _RENEWING:
                self.mode = _STOPPED
                self.cond.notify_all()

    def settle(self) -> None:
        with self.cond:
            if self.mode in (_RENEWING, _STOPPED):
                self.mode = _SETTLED
                self.cond.notify_all()

    def abandon(self) -> None:
        with self.cond:
            if self.mode in (_RENEWING, _STOPPED):
                self.mode = _ABANDONED
                self.cond.notify_all()

    def renewed(self, info: LeaseInfo, ends: Optional[float]) -> None:
        """Takes a renewal's answer (the guard's own, or the holder's)."""
        with self.cond:
            self.latest = info
            self.ends = ends
            self.cond.notify_all()

    def lose(self, reason: str, error: Optional[LeaseholdError], *, force: bool = False) -> None:
        """Marks the lease lost, unless it was settled (or ``force``: a refusal of the
        completion or release itself)."""
        with self.cond:
            if self.mode == _LOST or (
                not force and self.mode not in (_RENEWING, _STOPPED)
            ):
                return
            self.mode = _LOST
            self.lost_reason, self.lost_error = reason, error
            self.cond.notify_all()
        log.debug("lease on %s/%s lost: %s", self.pool, self.id, reason)
        self.lost.set()

    # -- The renewing thread -------------------------------------------------------------

    def _wait(self, until: float) -> bool:
        """Waits until the monotonic time ``until``; false if the guard stopped renewing
        meanwhile."""
        with self.cond:
            while self.mode == _RENEWING:
                left = until - time.monotonic()
                if left <= 0:
                    return True
                self.cond.wait(min(left, LONGEST_GUARD_WAIT))
            return False

    def run(self) -> None:
        """Renews at a third of each lease period until the lease is lost or the guard
        stops; then, if stopped, watches for the lease to run out."""
        try:
            self._renew()
        except Exception:  # pragma: no cover - a fault of this client's
            log.exception("lease on %s/%s: the renewing thread failed", self.pool, self.id)
        self._watch_after_stop()

    def _renew(self) -> None:
        period = self.period
        # Whether `period` comes from this guard's own renewal, rather than the claim.
        renewed_here = False
        while True:
            if period is not None:
                began, ends = period
                if not self._wait(began + (ends - began) / 3.0):
                    return
            tried = False
            while True:
                if self.mode != _RENEWING:
                    return
                now = time.monotonic()
                # Retries while the period lasts. Once it is over by this count: lost, if
                # a renewal was tried in it or it came from one; else (the claim's period
                # was over before the guard began, or never known) one renewal, with its
                # retries for up to `deciding`, whose answer decides.
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
                    info = self.client._renew_under(
                        policy, self.pool, self.id, self.holder, self.token, self.lease_ms
                    )
                except LeaseholdError as e:
                    if is_refusal(e.status, e.gave_up):
                        self.lose(f"refused: {e}", e)
                        return
                    # No answer, unavailable, over the rate limit, or retries given up
                    # on (also when the policy allows none): the outcome is unknown, so
                    # again while there is time, after any Retry-After that ends sooner.
                    log.debug("lease on %s/%s: renewal failed: %s", self.pool, self.id, e)
                    left = max(live_ends - time.monotonic(), 0.0) if live_ends else 0.0
                    pause = pause_after_failure(left, e.retry_after)
                    if not self._wait(time.monotonic() + pause):
                        return
                    continue
                next_ends = local_expiry(info, self.lease_ms, now)
                self.renewed(info, next_ends)
                if next_ends is None:
                    return  # no expiry any more: nothing to renew
                period, renewed_here = (now, next_ends), True
                break

    def _watch_after_stop(self) -> None:
        """While stopped: sets ``lost`` when the lease runs out by the holder's clock,
        unless it is settled first."""
        with self.cond:
            while self.mode == _STOPPED:
                ends = self.ends
                if ends is None:
                    return
                left = ends - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, LONGEST_GUARD_WAIT))
            else:
                return
        self.lose("expired: renewal was stopped and the lease ran out", None)


class Lease:
    """A lease on one item, renewed by a background thread until it is completed,
    released, stopped, or lost. Returned by :meth:`Client.claim_next`,
    :meth:`Client.claim_item` and :meth:`Client.adopt`.

    The thread renews at a third of the lease time (so two renewals can fail before it
    runs out), counted from when the claim was sent. It stops, and :attr:`lost` is set, as
    soon as the lease is no longer the holder's: the service refused a renewal (409
    ``lease_lost``: the item was reassigned, requeued, deleted or had expired), or no
    renewal succeeded, retrying through failures, before the lease time ran out. No
    answer, 408, 429 and 5xx are failures, not refusals, whatever the retry policy (also
    ``retries=0``); between tries the guard waits for a ``Retry-After`` that ends before
    the lease does. A lease without expiry (``lease_ms=0``) is not renewed, and renewing
    it by hand sends ``lease_ms`` 0, keeping it without expiry.

    Used as a context manager (``with lease:``), it releases the item on exit unless it
    was completed, released or lost (best effort: a failure is logged, and the lease then
    runs out by itself). A lease whose object is dropped stops renewing.

    Attributes:
        lost: a :class:`threading.Event`, set when the lease is lost.
    """

    def __init__(
        self,
        client: Client,
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
        # The guard's calls carry fresh keys, whatever key the claim was made with.
        self._client = client._fresh()
        self._pool = pool
        self._granted = info
        self._lease_ms = lease_ms
        self._finished = False
        self._guard = _Guard(self._client, pool, info, lease_ms, granted_after)
        self.lost: threading.Event = self._guard.lost
        if info.get("lease_expires_at") is not None:
            thread = threading.Thread(
                target=self._guard.run,
                name=f"leasehold-lease-{pool}/{info['id']}",
                daemon=True,
            )
            thread.start()
        weakref.finalize(self, self._guard.abandon)

    def __repr__(self) -> str:
        return (
            f"Lease(pool={self._pool!r}, id={self.id!r}, holder={self.holder!r}, "
            f"token={self.token}, lost={self.lost.is_set()})"
        )

    # -- What it is ----------------------------------------------------------------------

    @property
    def pool(self) -> str:
        return self._pool

    @property
    def id(self) -> str:
        """The item's id."""
        return self._granted["id"]

    @property
    def token(self) -> int:
        """The fencing token: pass it to downstream systems, which refuse a token lower
        than one they have seen."""
        return self._granted["token"]

    @property
    def holder(self) -> str:
        return self._granted["holder"]

    @property
    def data(self) -> Data:
        """The item's data when it was granted."""
        return self._granted["data"]

    @property
    def priority(self) -> int:
        return self._granted["priority"]

    @property
    def attempts(self) -> int:
        """How many times the item has been granted, this grant included."""
        return self._granted["attempts"]

    @property
    def info(self) -> LeaseInfo:
        """The lease as last granted or renewed (its canonical JSON)."""
        with self._guard.cond:
            return self._guard.latest

    @property
    def version(self) -> int:
        """The item's version as of the last grant or renewal."""
        return self.info["version"]

    @property
    def expires_at(self) -> Optional[datetime]:
        """When the lease runs out by the service's clock, as of the last grant or renewal
        (``None`` for a lease without expiry)."""
        expires = self.info["lease_expires_at"]
        return parse_time(expires) if expires is not None else None

    @property
    def lost_reason(self) -> Optional[str]:
        """Why the lease was lost, in words (``None`` while it is not)."""
        with self._guard.cond:
            return self._guard.lost_reason

    @property
    def lost_error(self) -> Optional[LeaseholdError]:
        """The refusal that lost the lease (``None`` when it ran out, or is not lost)."""
        with self._guard.cond:
            return self._guard.lost_error

    @property
    def finished(self) -> bool:
        """Whether :meth:`complete` or :meth:`release` has been called."""
        return self._finished

    @property
    def renewing(self) -> bool:
        """Whether the background thread is renewing the lease."""
        with self._guard.cond:
            return self._guard.mode == _RENEWING and self.info["lease_expires_at"] is not None

    # -- What it does --------------------------------------------------------------------

    def renew(self, lease_ms: Optional[int] = None) -> LeaseInfo:
        """Renews the lease now (by ``lease_ms``, or the claim's lease time); a refusal
        marks it lost and is raised."""
        lease_ms = lease_ms if lease_ms is not None else self._lease_ms
        sent_at = time.monotonic()
        try:
            info = self._client.renew(
                self._pool, self.id, holder=self.holder, token=self.token, lease_ms=lease_ms
            )
        except LeaseholdError as e:
            if is_refusal(e.status, e.gave_up):
                self._guard.lose(f"refused: {e}", e)
            raise
        self._guard.renewed(info, local_expiry(info, lease_ms, sent_at))
        return info

    def complete(self, data: Optional[Data] = None) -> Item:
        """Marks the item done (its data replaced by ``data``, if given) and stops
        renewing. Whatever the answer, the lease is finished with afterwards."""
        self._finish()
        try:
            return self._client.complete(
                self._pool, self.id, holder=self.holder, token=self.token, data=data
            )
        except LeaseholdError as e:
            self._lost_by(e)
            raise

    def release(self, delay_ms: Optional[int] = None, priority: Optional[int] = None) -> Item:
        """Gives the item back (available at once, or ``delayed`` for ``delay_ms``,
        optionally with a new priority) and stops renewing."""
        self._finish()
        try:
            return self._client.release(
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
        """Stops renewing, without giving the item back: the lease then runs out at its
        expiry, when :attr:`lost` is set (unless it is completed or released first)."""
        self._guard.stop()

    def _finish(self) -> None:
        self._finished = True
        self._guard.settle()

    def _lost_by(self, error: LeaseholdError) -> None:
        if error.code == "lease_lost":
            self._guard.lose(f"refused: {error}", error, force=True)

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._finished or self.lost.is_set():
            self._guard.settle()
            return
        try:
            self.release()
        except LeaseholdError as e:
            log.warning("lease on %s/%s: could not release it: %s", self._pool, self.id, e)


# -- Events ---------------------------------------------------------------------------------


class EventStream:
    """A pool's live events (``GET /v1/pools/{pool}/events/stream``), as an iterator of
    :data:`~leasehold.Followed`: each :class:`~leasehold.Event` dict, or a
    :class:`~leasehold.Trimmed` marker when events were dropped by the pool's cap before
    they could be sent.

    It connects when first iterated. A connection that ends or breaks is opened again,
    resuming after the last event yielded (``Last-Event-ID``), so every event is yielded
    once, in order. Opening is retried under the client's retry policy (no answer, 429,
    502–504); connections that keep ending without an event are opened again after the
    same backoff.

    It ends (``StopIteration``) once the pool is gone (a reconnection answered 404, as
    after the pool's deletion) or when :meth:`close` is called, from any thread: a read
    under way is cut at once, and no event is yielded after :meth:`close` has returned
    (not even one already received). It raises :class:`LeaseholdError` when the first
    connection is refused (404 for a pool that does not exist, 401, ...) or the retry
    policy gives up on reopening; a new stream from :attr:`last_event_id` goes on from
    there.

    Leaving a ``for`` loop over it (``break``) does not close it: iterating it again goes
    on with the event after the last one yielded, none repeated or skipped (its connection
    stays open meanwhile; one that ended is opened again). Once closed, it yields nothing
    more: ``client.follow_events(pool, after=stream.last_event_id)`` goes on from there.

    Raises :class:`ValueError` at once for an ``after`` that cannot be sent as
    ``Last-Event-ID`` (a line break, a control or non-ASCII character).
    """

    def __init__(self, client: Client, pool: str, after: Optional[str]) -> None:
        if after is not None:
            check_header_value("Last-Event-ID", after)
        self._client = client
        self._pool = pool
        #: The id of the last event yielded (or the ``after`` it started from): where a
        #: new stream goes on from this one.
        self.last_event_id: Optional[str] = after
        #: How many connections it has opened.
        self.connections = 0
        self._closed = threading.Event()
        self._lock = threading.Lock()
        # Held while the generator runs: whoever holds it may close the generator.
        self._iterating = threading.Lock()
        self._response: Optional[httpx.Response] = None
        self._events = self._follow()

    def __iter__(self) -> Iterator[Followed]:
        return self

    def __next__(self) -> Followed:
        with self._iterating:
            if self._closed.is_set():
                self._events.close()
                raise StopIteration
            return next(self._events)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Ends the stream: the iteration stops, also if another thread is reading it."""
        self._closed.set()
        with self._lock:
            response = self._response
        if response is not None:
            _cut(response)
        # Unless another thread is in the middle of reading it (which then stops by
        # itself, as cut, yielding nothing more), the generator is closed here, and its
        # connection with it.
        if self._iterating.acquire(blocking=False):
            try:
                self._events.close()
            finally:
                self._iterating.release()

    def _follow(self) -> Generator[Followed, None, None]:
        opened = False
        idle_ends = 0  # connections in a row that ended without yielding anything
        policy = self._client.retry_policy
        while not self._closed.is_set():
            if idle_ends > 1 and self._closed.wait(policy.delay(idle_ends - 2)):
                return
            call = _calls.events_stream(self._pool, self.last_event_id)
            try:
                response = self._client._open(call, self._closed)
            except _Interrupted:
                return
            except LeaseholdError as e:
                if self._closed.is_set() or (opened and e.code == "not_found"):
                    return  # closed, or the pool has gone
                raise
            opened = True
            self.connections += 1
            with self._lock:
                self._response = response
            if self._closed.is_set():
                response.close()
                return
            parser = Parser()
            try:
                for chunk in response.iter_raw():
                    for message in parser.feed(chunk):
                        # Closed meanwhile (from another thread): what was read already
                        # is not yielded.
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
                # Broke (reset, timed out, cut mid-event): open again, after the last
                # event yielded.
                log.debug("event stream of %s broke: %s", self._pool, e)
            finally:
                with self._lock:
                    self._response = None
                response.close()
            idle_ends += 1


def _cut(response: httpx.Response) -> None:
    """Cuts a streaming response's connection at once, also while another thread is
    blocked reading it (closing the socket alone would not wake that read)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    # A socket.socket, or asyncio's TransportSocket wrapper of one: both can shut down.
    shutdown = getattr(sock, "shutdown", None)
    if callable(shutdown):
        try:
            shutdown(socket.SHUT_RDWR)
            return
        except OSError:
            pass
    response.close()


__all__ = ["Client", "Lease", "EventStream"]
