"""schemathesis hooks for scripts/schemathesis.sh.

JSON Schema cannot say "ids unique within the array" (uniqueItems only covers identical
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
