"""API keys and limits, in both flavours, against a server with a key file and a small
item quota: the key is sent as ``Authorization: Bearer``, and refusals carry the limit
(``quota``, ``limit``, ``usage``)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from conftest import aw, close_api, lease_of, make_api, unique
from devserver import DevServer

from leasehold import LeaseholdError

KEY = "test-key-of-acme"


@pytest.fixture(scope="module")
def keyed() -> Iterator[DevServer]:
    """A server that knows one API key (tenant ``acme``) and allows 2 items a pool."""
    with tempfile.TemporaryDirectory(prefix="leasehold-py-keys-") as tmp:
        keys = Path(tmp) / "keys"
        keys.write_text(f"acme:{hashlib.sha256(KEY.encode()).hexdigest()}\n")
        with DevServer("--api-keys", str(keys), "--max-items-per-pool", "2") as server:
            yield server


async def test_the_api_key_names_the_tenant(flavour: str, keyed: DevServer) -> None:
    api = make_api(flavour, keyed.url, api_key=KEY)
    wrong = make_api(flavour, keyed.url, api_key="not-a-key")
    try:
        assert (await aw(api.tenant()))["tenant"] == "acme"
        with pytest.raises(LeaseholdError) as refused:
            await aw(wrong.tenant())
        assert (refused.value.status, refused.value.code) == (401, "unauthorized")
        assert refused.value.attempts == 1
    finally:
        await close_api(api)
        await close_api(wrong)


async def test_a_quota_refusal_says_which_limit(flavour: str, keyed: DevServer) -> None:
    api = make_api(flavour, keyed.url, api_key=KEY)
    try:
        pool = unique("quota")
        with pytest.raises(LeaseholdError) as over:
            await aw(api.add_items(pool, ["a", "b", "c"]))
        error = over.value
        assert (error.status, error.code) == (409, "quota_exceeded")
        assert (error.quota, error.limit, error.usage) == ("max_items_per_pool", 2, 0)
        assert "would add 3" in error.detail
        # Nothing was written; what fits goes through.
        assert (await aw(api.add_items(pool, ["a", "b"])))["created"] == ["a", "b"]
    finally:
        await close_api(api)


async def test_a_holder_at_capacity_is_told_the_limit(flavour: str, keyed: DevServer) -> None:
    api = make_api(flavour, keyed.url, api_key=KEY)
    try:
        pool = unique("capacity")
        await aw(api.put_pool(pool, max_leases_per_holder=1))
        await aw(api.add_items(pool, ["a", "b"]))
        held = await lease_of(api.claim_item(pool, "a", holder="h", lease_ms=0))
        with pytest.raises(LeaseholdError) as full:
            await lease_of(api.claim_item(pool, "b", holder="h", lease_ms=0))
        assert (full.value.code, full.value.limit) == ("holder_at_capacity", 1)
        await aw(held.complete())
    finally:
        await close_api(api)
