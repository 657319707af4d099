"""schemathesis hooks for scripts/schemathesis.sh.

Ids: JSON Schema cannot say "ids unique within the array" (uniqueItems only covers identical
items), so the description of POST /v1/pools/{pool}/items states it in words (400
otherwise), and this hook keeps every phase from sending a request the contract refuses for
a reason the schema cannot show. The refusal itself is tested in tests/api/items.rs.
"""

import schemathesis


@schemathesis.hook("filter_case").apply_to(method="POST", path="/v1/pools/{pool}/items")
def filter_case(context, case):
    body = case.body
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return True
    ids = [item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]
    return len(ids) == len(set(ids))


@schemathesis.hook("map_case").apply_to(method="POST", path="/v1/pools/{pool}/claim")
def map_case(context, case):
    """A claim's `wait_ms` is real waiting (up to 30 s) when the pool has nothing to lease,
    which the generated pools mostly do: a valid wait is cut to at most 20 ms, so the run
    spends its time on requests rather than on waiting. Out-of-range waits are left as they
    are (they must still be refused); tests/api/long_poll.rs tests the waiting itself."""
    body = case.body
    if isinstance(body, dict):
        wait = body.get("wait_ms")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool) and 0 <= wait <= 30000:
            if wait == int(wait) and wait > 20:
                body["wait_ms"] = 20
    return case


def _significant_digits(number):
    """How many significant digits Python's shortest form of a float has."""
    mantissa = repr(abs(number)).lower().split("e")[0].replace(".", "")
    return len(mantissa.strip("0"))


def _inexact(value):
    """Whether JSON `value` holds a number the service would not answer as written: a whole
    number beyond 64 bits, or a decimal of 17 significant digits (there, two forms of one
    double can be equally short, and the service's may be the other one: -2108371602823987.2
    is answered -2108371602823987.3). The service refuses those in item data (400 naming the
    field) rather than change them, a rule JSON Schema cannot state. The refusal itself is
    tested in tests/api/items.rs and src/api/data.rs."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not (-(2**63) <= value < 2**64)
    if isinstance(value, float):
        return _significant_digits(value) >= 17
    if isinstance(value, dict):
        return any(_inexact(v) for v in value.values())
    if isinstance(value, list):
        return any(_inexact(v) for v in value)
    return False


@schemathesis.hook("filter_case").apply_to(method="POST", path="/v1/pools/{pool}/items").apply_to(
    method="PUT", path="/v1/pools/{pool}/items/{id}"
).apply_to(method="PATCH", path="/v1/pools/{pool}/items/{id}").apply_to(
    method="POST", path="/v1/pools/{pool}/items/{id}/complete"
)
def exact_numbers(context, case):
    return not _inexact(case.body)
