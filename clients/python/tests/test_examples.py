"""The examples, run against the session's ``leasehold dev``: the "Allocate case" endpoint
served over real HTTP, and the worker draining a pool exactly once (as processes stopped
by SIGTERM, and in a thread stopped by an event)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Iterator, List, Optional
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from conftest import eventually, unique
from devserver import PACKAGE_DIR, DevServer

from leasehold import Client, Data, Lease, RetryPolicy

EXAMPLES = PACKAGE_DIR / "examples"
sys.path.insert(0, str(EXAMPLES))

import allocate_case  # noqa: E402
import worker  # noqa: E402


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def allocation(dev: DevServer) -> Iterator[Dict[str, Any]]:
    """The endpoint served on a free port, over a pool of three cases."""
    pool, counter = unique("intake"), unique("case-ids")
    with Client(dev.url) as client:
        client.add_items(pool, ["form-1", "form-2", "form-3"])
        app = allocate_case.make_app(client, pool=pool, counter=counter)
        server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield {
                "url": f"http://127.0.0.1:{server.server_port}/allocate",
                "client": client,
                "pool": pool,
                "counter": counter,
            }
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def post(url: str, user: Optional[str], request_id: Optional[str]) -> httpx.Response:
    headers = {}
    if user is not None:
        headers["X-User"] = user
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return httpx.post(url, headers=headers, timeout=10)


def test_allocate_case_gives_a_retried_request_the_same_case(allocation: Dict[str, Any]) -> None:
    url, client = allocation["url"], allocation["client"]
    first = post(url, "alice", "req-1")
    assert first.status_code == 200, first.text
    case = first.json()
    assert case["holder"] == "alice" and case["item"] == "form-1"
    assert case["case_id"].startswith("CASE-") and case["case_id"].endswith("-00001")

    # The same request again (its answer was lost, say): the same case, the same ID.
    retried = post(url, "alice", "req-1")
    assert retried.status_code == 200
    assert retried.json() == case

    # Another request: another case, the next ID.
    second = post(url, "alice", "req-2").json()
    assert second["item"] == "form-2" and second["case_id"].endswith("-00002")
    third = post(url, "bob", "req-3").json()
    assert (third["item"], third["holder"]) == ("form-3", "bob")

    # Each case carries its ID, and only three numbers were drawn.
    item, _ = client.get_item(allocation["pool"], "form-1")
    assert (item["holder"], item["data"]) == ("alice", {"case_id": case["case_id"]})
    assert client.get_counter(allocation["counter"])["value"] == 3

    assert post(url, "carol", "req-4").status_code == 404  # nothing left
    assert post(url, "carol", None).status_code == 400


def test_worker_processes_drain_a_pool_exactly_once(dev: DevServer) -> None:
    pool = unique("jobs")
    ids = [f"job-{n:02}" for n in range(30)]
    with Client(dev.url) as client:
        client.add_items(pool, ids)
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(EXAMPLES / "worker.py"),
                    "--url",
                    dev.url,
                    "--pool",
                    pool,
                    "--holder",
                    f"worker-{n}",
                    "--wait-ms",
                    "500",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in (1, 2)
        ]
        try:
            deadline = time.monotonic() + 30
            while client.get_pool(pool)["counts"]["done"] < len(ids):
                assert time.monotonic() < deadline, "the workers did not drain the pool"
                assert all(w.poll() is None for w in workers), "a worker ended early"
                time.sleep(0.05)
            outputs = []
            for w in workers:
                w.send_signal(signal.SIGTERM)
                out, err = w.communicate(timeout=15)
                assert w.returncode == 0, err
                outputs.append(out)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                    w.wait()

        # Each item was worked on once, by one worker, and completed once.
        lines = [line.split() for out in outputs for line in out.splitlines()]
        assert sorted(item for _, item in lines) == ids
        for holder, item in lines:
            data = client.get_item(pool, item)[0]["data"]
            assert data == {"worked_by": holder}
        events = client.list_events(pool, limit=1000)["events"]
        completed = sorted(e["item"] or "" for e in events if e["type"] == "completed")
        assert completed == ids


async def test_worker_loop_gives_back_what_failed_and_stops_on_its_event(dev: DevServer) -> None:
    pool = unique("loop")
    ids = [f"task-{n}" for n in range(8)]
    failed_once: List[str] = []
    worked: List[str] = []

    def handle(lease: Lease) -> Data:
        if lease.id == "task-3" and not failed_once:
            failed_once.append(lease.id)
            raise RuntimeError("a transient fault")
        worked.append(lease.id)
        return {"ok": True}

    stop = threading.Event()
    with Client(dev.url, retries=RetryPolicy(max_attempts=3)) as client:
        client.add_items(pool, ids)
        completed: List[int] = []
        thread = threading.Thread(
            target=lambda: completed.append(
                worker.run_worker(client, pool, "loop-worker", handle, stop, wait_ms=300)
            ),
            daemon=True,
        )
        thread.start()
        try:
            await eventually(
                lambda: client.get_pool(pool)["counts"]["done"] == len(ids),
                what="the worker completes every task",
            )
        finally:
            stop.set()
            thread.join(timeout=5)
        assert not thread.is_alive()
        assert completed == [len(ids)]
        assert sorted(worked) == ids and failed_once == ["task-3"]
        # The failed try gave the item back at once; the second try completed it.
        item, _ = client.get_item(pool, "task-3")
        assert (item["state"], item["attempts"]) == ("done", 2)
