"""Shared fixtures: a real ``leasehold dev`` for the session, and the client under test in
both flavours.

Most tests are written once and run twice: the ``api`` fixture is a :class:`Client` or an
:class:`AsyncClient`, and every call goes through :func:`aw`, which awaits what the async
flavour returns and passes the sync flavour's answer through. Leases are ``Lease`` or
``AsyncLease`` accordingly; waits poll with :func:`eventually` (with a deadline), yielding
to the event loop so that async lease guards keep running.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    List,
    TypeVar,
    Union,
)

import pytest
from devserver import DevServer

from leasehold import AsyncClient, AsyncLease, Client, Lease, LeaseholdError, RetryPolicy

T = TypeVar("T")

#: The client under test, in either flavour.
Api = Union[Client, AsyncClient]
#: A lease guard of either flavour.
AnyLease = Union[Lease, AsyncLease]


async def aw(value: Union[Awaitable[T], T]) -> T:
    """The answer of a call of either flavour: awaited if it is awaitable."""
    if inspect.isawaitable(value):
        return await value
    return value


async def leases_of(value: Union[List[Lease], Awaitable[List[AsyncLease]]]) -> List[AnyLease]:
    """The leases of a ``claim_next`` of either flavour."""
    if inspect.isawaitable(value):
        return list(await value)
    return list(value)


async def lease_of(value: Union[Lease, Awaitable[AsyncLease]]) -> AnyLease:
    """The lease of a ``claim_item`` of either flavour."""
    if inspect.isawaitable(value):
        return await value
    return value


async def eventually(
    check: Callable[[], Union[bool, Awaitable[bool]]],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> None:
    """Polls ``check`` until it holds, failing the test if it does not within ``timeout``
    seconds. Sleeps through the event loop, so async tasks run meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        if await aw(check()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        await asyncio.sleep(interval)


async def until(moment: float) -> None:
    """Lets time pass until the monotonic ``moment`` (for tests about time itself, such as
    a lease outliving its lease time), through the event loop."""
    await asyncio.sleep(max(moment - time.monotonic(), 0.0))


async def first_allowed(call: Callable[[], Awaitable[T]], *, timeout: float = 5.0) -> T:
    """The answer of ``call`` (``lambda: aw(api.method(...))``), made again while the
    service answers it 429 (a refusal by the rate limiter changes nothing, not even the limiter): for a
    rate-limited server, to make a call at the first moment it is allowed, so that the
    next one is refused for a known time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except LeaseholdError as e:
            if e.status != 429 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.02)


def unique(prefix: str) -> str:
    """A name no other test uses (pools and counters live on a shared server)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_api(flavour: str, url: str, **settings: Any) -> Api:
    """A client of the given flavour (``"sync"`` or ``"async"``)."""
    if flavour == "sync":
        return Client(url, **settings)
    return AsyncClient(url, **settings)


async def close_api(api: Api) -> None:
    if isinstance(api, AsyncClient):
        await api.aclose()
    else:
        api.close()


@pytest.fixture(scope="session")
def dev() -> Iterator[DevServer]:
    """The session's ``leasehold dev``."""
    with DevServer() as server:
        yield server


@pytest.fixture(scope="session")
def one_per_second() -> Iterator[DevServer]:
    """A ``leasehold dev`` that lets the tenant make one request a second, and no more at
    once (``--rate-limit 1 --rate-burst 1``): a request within a second of the last one
    admitted is answered 429 with ``Retry-After: 1``. Shared by the tests that need it;
    each starts with :func:`first_allowed`."""
    with DevServer("--rate-limit", "1", "--rate-burst", "1") as server:
        yield server


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Which client flavour a test runs with."""
    value: str = request.param
    return value


@pytest.fixture
async def api(flavour: str, dev: DevServer) -> AsyncIterator[Api]:
    """The client under test, of the test's flavour, against the session's server."""
    client = make_api(flavour, dev.url)
    try:
        yield client
    finally:
        await close_api(client)


@pytest.fixture
def sync_client(dev: DevServer) -> Iterator[Client]:
    """A plain blocking client, for setting the scene."""
    with Client(dev.url, retries=RetryPolicy.never()) as client:
        yield client
