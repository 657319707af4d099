"""A worker: takes items from a pool one at a time, works on each under its lease, and
completes it, until told to stop (SIGTERM or SIGINT, or a ``threading.Event``).

- It waits for work without polling: a long-poll claim (``wait_ms``) answers as soon as
  an item is available, or empty when the wait is over (then it claims again).
- The work runs under the lease guard, which renews the lease in the background at a
  third of its time; if the lease is lost meanwhile (it was reassigned, or could not be
  renewed in time), the result is not completed — someone else may have the item now.
- Leaving the ``with`` block without completing (the work raised) gives the item back at
  once instead of at the lease's expiry.
- Stopping is graceful: the item in hand is finished; the claim waiting at the time ends
  within ``wait_ms``.

Run it::

    python examples/worker.py --url http://127.0.0.1:8080 --pool jobs --holder worker-1

It prints one line per item it completes: ``<holder> <item id>``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Callable, Optional

from leasehold import Client, Data, Lease, LeaseholdError

log = logging.getLogger("worker")

#: What works on one item: returns the data to complete it with (or ``None`` to keep its
#: data as it is).
Handler = Callable[[Lease], Optional[Data]]


def run_worker(
    client: Client,
    pool: str,
    holder: str,
    handle: Handler,
    stop: threading.Event,
    *,
    lease_ms: int = 30000,
    wait_ms: int = 5000,
) -> int:
    """Works on the pool's items until ``stop`` is set; returns how many it completed."""
    completed = 0
    while not stop.is_set():
        try:
            leases = client.claim_next(
                pool, holder=holder, lease_ms=lease_ms, wait_ms=wait_ms, create=True
            )
        except LeaseholdError as e:
            # The client has retried what could be retried: wait a little and go on.
            log.warning("claiming failed: %s", e)
            stop.wait(1.0)
            continue
        for lease in leases:
            with lease:
                try:
                    result = handle(lease)
                except Exception:
                    # Leaving the `with` block gives the item back, for another try.
                    log.exception("working on %s failed: giving it back", lease.id)
                    continue
                if lease.lost.is_set():
                    log.warning("lost %s before finishing it: %s", lease.id, lease.lost_reason)
                    continue
                try:
                    lease.complete(result)
                except LeaseholdError as e:
                    log.warning("could not complete %s: %s", lease.id, e)
                    continue
                completed += 1
    return completed


def main() -> int:
    parser = argparse.ArgumentParser(description="A Leasehold worker.")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Leasehold's URL")
    parser.add_argument("--api-key", default=None, help="the API key (none for leasehold dev)")
    parser.add_argument("--pool", required=True)
    parser.add_argument("--holder", required=True)
    parser.add_argument("--lease-ms", type=int, default=30000)
    parser.add_argument("--wait-ms", type=int, default=5000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    stop = threading.Event()

    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        log.info("signal %d: stopping after the item in hand", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def handle(lease: Lease) -> Data:
        # The work itself: here, say which worker did it.
        print(f"{args.holder} {lease.id}", flush=True)
        return {**lease.data, "worked_by": args.holder}

    with Client(args.url, api_key=args.api_key) as client:
        done = run_worker(
            client,
            args.pool,
            args.holder,
            handle,
            stop,
            lease_ms=args.lease_ms,
            wait_ms=args.wait_ms,
        )
    log.info("stopped after completing %d items", done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
