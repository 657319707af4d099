"""An "Allocate case" HTTP endpoint, as a plain WSGI app (standard library only).

``POST /allocate`` with the headers ``X-User`` (the caller; a real app takes it from its
authentication) and ``X-Request-Id`` (the id the caller's HTTP client keeps for one
logical request, the same on each of its retries) claims the next case of the ``intake``
pool for the caller, draws its case ID from a per-day counter
(``CASE-20260110-00042``), and records the ID on the case, answering::

    {"case_id": "CASE-20260110-00042", "item": "form-17", "token": 42, "holder": "alice"}

A request retried with the same ``X-Request-Id`` (the caller's connection broke before
the answer came) gets the *same* case and case ID, not another: each call to Leasehold
carries an ``Idempotency-Key`` derived from the request id, so the service replays its
first answer instead of applying the call again. Another request id gets another case.

The case is claimed without expiry (``lease_ms=0``): it stays the caller's until they
complete or release it, and the endpoint starts no background renewal.

Run it::

    python examples/allocate_case.py --url http://127.0.0.1:8080 --listen 127.0.0.1:8000
    curl -X POST -H 'X-User: alice' -H 'X-Request-Id: r-1' http://127.0.0.1:8000/allocate
"""

from __future__ import annotations

import argparse
import hashlib
import json
from typing import Any, Callable, Dict, Iterable, List, Tuple
from wsgiref.simple_server import make_server

from leasehold import Client, LeaseholdError

StartResponse = Callable[[str, List[Tuple[str, str]]], Any]
WsgiApp = Callable[[Dict[str, Any], StartResponse], Iterable[bytes]]


def idempotency_key(request_id: str, step: str) -> str:
    """The key for one step of a request: the request id (hashed if long, as a key has at
    most 128 characters) and the step. Keys are scoped per pool and per counter, but a
    key per step keeps each call's key its own whatever it is about."""
    base = request_id if len(request_id) <= 100 else hashlib.sha256(request_id.encode()).hexdigest()
    return f"{base}:{step}"


def allocate(
    client: Client, user: str, request_id: str, *, pool: str, counter: str, case_format: str
) -> Dict[str, Any]:
    """Claims the next case for ``user`` and gives it a case ID; the same answer for the
    same ``request_id``. Raises :class:`LookupError` when there is nothing to allocate."""
    claimed = client.with_idempotency_key(idempotency_key(request_id, "claim")).claim_next(
        pool, holder=user, lease_ms=0, create=True
    )
    if not claimed:
        raise LookupError("nothing to allocate")
    case = claimed[0]
    draw = client.with_idempotency_key(idempotency_key(request_id, "case-id")).next_counter(
        counter, format=case_format
    )
    case_id = draw.get("ids", [""])[0]
    # Recorded under the case's lease: only while it is still the caller's.
    client.with_idempotency_key(idempotency_key(request_id, "record")).patch_item(
        pool, case.id, {"case_id": case_id}, lease_token=case.token
    )
    return {"case_id": case_id, "item": case.id, "token": case.token, "holder": case.holder}


def make_app(
    client: Client,
    *,
    pool: str = "intake",
    counter: str = "case-ids",
    case_format: str = "CASE-{date}-{seq:05}",
) -> WsgiApp:
    """The WSGI app, calling Leasehold through ``client``."""

    def app(environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def answer(status: str, body: Dict[str, Any]) -> List[bytes]:
            payload = json.dumps(body).encode()
            start_response(
                status,
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]

        if environ.get("PATH_INFO") != "/allocate":
            return answer("404 Not Found", {"error": "no such route"})
        if environ.get("REQUEST_METHOD") != "POST":
            return answer("405 Method Not Allowed", {"error": "POST only"})
        user = environ.get("HTTP_X_USER", "")
        request_id = environ.get("HTTP_X_REQUEST_ID", "")
        if not user or not request_id:
            return answer("400 Bad Request", {"error": "X-User and X-Request-Id are needed"})
        try:
            allocated = allocate(
                client, user, request_id, pool=pool, counter=counter, case_format=case_format
            )
        except LookupError:
            return answer("404 Not Found", {"error": "nothing to allocate"})
        except ValueError as e:
            # Refused by the client before sending: a request id that cannot be a key (a
            # space, a character beyond visible ASCII).
            return answer("400 Bad Request", {"error": str(e)})
        except LeaseholdError as e:
            # A refusal (a user name the service does not take, ...) is the caller's to
            # fix; anything else is ours, and retrying with the same request id is safe.
            status = "400 Bad Request" if e.status in (400, 409) else "503 Service Unavailable"
            return answer(status, {"error": str(e), "code": e.code})
        return answer("200 OK", allocated)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Leasehold's URL")
    parser.add_argument("--api-key", default=None, help="the API key (none for leasehold dev)")
    parser.add_argument("--listen", default="127.0.0.1:8000", help="host:port to serve on")
    parser.add_argument("--pool", default="intake")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    with Client(args.url, api_key=args.api_key) as client:
        with make_server(host, int(port), make_app(client, pool=args.pool)) as server:
            print(f"allocating cases on http://{host}:{server.server_port}/allocate", flush=True)
            server.serve_forever()


if __name__ == "__main__":
    main()
