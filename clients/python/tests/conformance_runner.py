"""The Python runner of the conformance suite (``clients/conformance/README.md``).

A scenario is a list of steps, each an operation of the client with its arguments, and
what must come back. The runner makes each call through the client's own methods — the
blocking :class:`~leasehold.Client` (concurrent steps on threads) or the
:class:`~leasehold.AsyncClient` (concurrent steps gathered) — turns each answer into its
*canonical JSON* (the HTTP API's JSON for it), and matches it against the expectation.
It reports the scenario as passed, or failed with the step (index and ``op``) and why.

The scenario loop is written once, as a coroutine; an *executor* says how a call is made
(called at once, or awaited) and how several are made together (threads started at one
barrier, or ``asyncio.gather``).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from leasehold import AsyncClient, AsyncLease, Client, Lease, LeaseholdError

AnyClient = Union[Client, AsyncClient]
AnyLease = Union[Lease, AsyncLease]

#: A call ready to make: returns the answer (blocking client) or an awaitable of it.
Thunk = Callable[[], Any]

# The arguments each operation takes by position, in the client method's order; the rest
# are passed by keyword, under their names in the scenario (the HTTP API's names).
POSITIONAL: Dict[str, Tuple[str, ...]] = {
    "put_pool": ("pool", "settings"),
    "get_pool": ("pool",),
    "list_pools": (),
    "delete_pool": ("pool",),
    "add_items": ("pool", "items"),
    "get_item": ("pool", "id"),
    "put_item": ("pool", "id", "data"),
    "patch_item": ("pool", "id", "patch"),
    "delete_item": ("pool", "id"),
    "list_items": ("pool",),
    "claim_next": ("pool",),
    "claim_item": ("pool", "id"),
    "assign_item": ("pool", "id", "holder"),
    "requeue_item": ("pool", "id"),
    "list_leases": ("pool", "holder"),
    "next_counter": ("name",),
    "get_counter": ("name",),
    "list_events": ("pool",),
}

#: Operations on a saved lease (the ``lease`` argument).
LEASE_OPS = ("renew", "release", "complete")

_REFERENCE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_-]*)((?:\.[^.]+)*)$")
_MATCHERS = ("$type", "$len", "$prefix", "$regex", "$gt", "$ge", "$ne")


class ScenarioFailed(Exception):
    """Why the scenario failed at the step being run."""


@dataclass
class Report:
    """How one run of a scenario went."""

    name: str
    passed: bool
    step: Optional[int] = None
    op: Optional[str] = None
    why: str = ""

    def describe(self) -> str:
        if self.passed:
            return f"{self.name}: passed"
        return f"{self.name}: failed at step {self.step} ({self.op}): {self.why}"


@dataclass
class Outcome:
    """One call's outcome: the client's own answer (``value``) and its canonical JSON,
    or the :class:`LeaseholdError` it raised (canonically ``{status, code, detail,
    current}``)."""

    value: Any = None
    canonical: Any = None
    error: Optional[LeaseholdError] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def error_json(self) -> Dict[str, Any]:
        assert self.error is not None
        e = self.error
        return {"status": e.status, "code": e.code, "detail": e.detail, "current": e.current}

    def describe(self) -> str:
        if self.error is not None:
            return f"error {json.dumps(self.error_json())}"
        return f"result {json.dumps(self.canonical)}"


# -- Substitution and references ----------------------------------------------------------


def substitute_run(value: Any, run: str) -> Any:
    """``value`` with ``{run}`` replaced by the run id in every string."""
    if isinstance(value, str):
        return value.replace("{run}", run)
    if isinstance(value, list):
        return [substitute_run(v, run) for v in value]
    if isinstance(value, dict):
        return {k: substitute_run(v, run) for k, v in value.items()}
    return value


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and _REFERENCE.match(value) is not None


def follow_path(value: Any, path: Sequence[str], what: str) -> Any:
    """``value`` followed along ``path`` (object keys, list indexes)."""
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise ScenarioFailed(f"reference {what}: nothing at {part!r}")
    return value


def split_reference(reference: str) -> Tuple[str, List[str]]:
    match = _REFERENCE.match(reference)
    assert match is not None
    path = [p for p in match.group(2).split(".") if p]
    return match.group(1), path


class Saved:
    """What earlier steps saved: each answer as the client's object and as JSON."""

    def __init__(self) -> None:
        self.objects: Dict[str, Any] = {}
        self.canonical: Dict[str, Any] = {}

    def save(self, name: str, value: Any, canonical: Any) -> None:
        self.objects[name] = value
        self.canonical[name] = canonical

    def value_of(self, reference: str) -> Any:
        """The JSON value a reference stands for."""
        name, path = split_reference(reference)
        if name not in self.canonical:
            raise ScenarioFailed(f"reference {reference}: nothing saved as {name!r}")
        return follow_path(self.canonical[name], path, reference)

    def object_of(self, reference: str) -> Any:
        """The client object a reference stands for (a lease, for ``lease`` arguments)."""
        if not is_reference(reference):
            raise ScenarioFailed(f"{reference!r} is not a reference")
        name, path = split_reference(reference)
        if name not in self.objects:
            raise ScenarioFailed(f"reference {reference}: nothing saved as {name!r}")
        return follow_path(self.objects[name], path, reference)

    def resolve(self, value: Any) -> Any:
        """``value`` with every reference replaced by what it stands for."""
        if is_reference(value):
            return self.value_of(value)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value


# -- Matching -----------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_of(value: Any) -> List[str]:
    if value is None:
        return ["null"]
    if isinstance(value, bool):
        return ["boolean"]
    if isinstance(value, int):
        return ["integer", "number"]
    if isinstance(value, float):
        return ["integer", "number"] if value.is_integer() else ["number"]
    if isinstance(value, str):
        return ["string"]
    if isinstance(value, list):
        return ["array"]
    if isinstance(value, dict):
        return ["object"]
    return [type(value).__name__]


def match(expected: Any, actual: Any, saved: Saved, where: str = "") -> Optional[str]:
    """``None`` if ``actual`` matches ``expected`` (the README's rules), else why not."""
    at = where or "the answer"
    if is_reference(expected):
        return match(saved.value_of(expected), actual, saved, where)
    if isinstance(expected, dict) and len(expected) == 1 and next(iter(expected)) in _MATCHERS:
        ((kind, operand),) = expected.items()
        return _matcher(kind, operand, actual, saved, at)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{at}: expected an object, got {json.dumps(actual)}"
        for key, value in expected.items():
            why = match(value, actual.get(key), saved, f"{where}.{key}" if where else key)
            if why:
                return why
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{at}: expected a list of {len(expected)}, got {json.dumps(actual)}"
        for index, (e, a) in enumerate(zip(expected, actual)):
            why = match(e, a, saved, f"{where}[{index}]")
            if why:
                return why
        return None
    if _is_number(expected):
        if _is_number(actual) and actual == expected:
            return None
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(actual) is type(expected) and actual == expected:
            return None
    return f"{at}: expected {json.dumps(expected)}, got {json.dumps(actual)}"


def _matcher(kind: str, operand: Any, actual: Any, saved: Saved, at: str) -> Optional[str]:
    shown = json.dumps(actual)
    if kind == "$type":
        return None if operand in _type_of(actual) else f"{at}: expected a {operand}, got {shown}"
    if kind == "$len":
        if isinstance(actual, (list, str)) and len(actual) == operand:
            return None
        return f"{at}: expected length {operand}, got {shown}"
    if kind == "$prefix":
        if not isinstance(actual, list) or len(actual) < len(operand):
            return f"{at}: expected a list starting with {len(operand)} elements, got {shown}"
        for index, element in enumerate(operand):
            why = match(element, actual[index], saved, f"{at}[{index}]")
            if why:
                return why
        return None
    if kind == "$regex":
        if isinstance(actual, str) and re.search(operand, actual):
            return None
        return f"{at}: expected a string matching /{operand}/, got {shown}"
    if kind in ("$gt", "$ge"):
        bound = saved.resolve(operand)
        if _is_number(actual) and (actual > bound if kind == "$gt" else actual >= bound):
            return None
        word = "greater than" if kind == "$gt" else "at least"
        return f"{at}: expected a number {word} {bound}, got {shown}"
    if kind == "$ne":
        if match(operand, actual, saved, at) is None:
            return f"{at}: expected anything but {json.dumps(saved.resolve(operand))}"
        return None
    raise ScenarioFailed(f"unknown matcher {kind}")  # pragma: no cover - _MATCHERS


def check_expect(expect: Dict[str, Any], outcome: Outcome, saved: Saved) -> Optional[str]:
    """Why ``outcome`` does not meet ``expect`` (``{"result": M}`` or ``{"error": E}``),
    or ``None``."""
    if "result" in expect:
        if not outcome.ok:
            return f"expected a result, got {outcome.describe()}"
        return match(expect["result"], outcome.canonical, saved)
    if "error" in expect:
        if outcome.ok:
            return f"expected an error, got {outcome.describe()}"
        why = match(expect["error"], outcome.error_json(), saved, "error")
        return None if why is None else f"{why} ({outcome.describe()})"
    raise ScenarioFailed(f"expect must have result or error: {json.dumps(expect)}")


def check_together(together: Dict[str, Any], outcomes: List[Outcome]) -> Optional[str]:
    """Why the outcomes of a concurrent step do not meet ``together``, or ``None``."""
    succeeded = [o for o in outcomes if o.ok]
    if "ok" in together and len(succeeded) != together["ok"]:
        failures = sorted(str(o.error.code if o.error else None) for o in outcomes if not o.ok)
        return f"expected {together['ok']} to succeed, {len(succeeded)} did (failures: {failures})"
    if "errors" in together:
        counted: Dict[str, int] = {}
        for o in outcomes:
            if o.error is not None:
                code = str(o.error.code)
                counted[code] = counted.get(code, 0) + 1
        if counted != together["errors"]:
            return f"expected errors {json.dumps(together['errors'])}, got {json.dumps(counted)}"
    if "collect" in together:
        rule = together["collect"]
        path = [p for p in str(rule["path"]).split(".") if p]
        values: List[Any] = []
        for o in succeeded:
            elements = o.canonical if isinstance(o.canonical, list) else [o.canonical]
            for element in elements:
                value = follow_path(element, path, f"collect {rule['path']}")
                values.extend(value if isinstance(value, list) else [value])
        if "count" in rule and len(values) != rule["count"]:
            return f"collect {rule['path']}: expected {rule['count']} values, got {len(values)}"
        if rule.get("distinct") and len(set(map(json.dumps, values))) != len(values):
            return f"collect {rule['path']}: values repeat: {json.dumps(values)}"
        if "range" in rule:
            low, high = rule["range"]
            if sorted(values) != list(range(low, high + 1)):
                return f"collect {rule['path']}: expected {low}..{high}, got {sorted(values)}"
    return None


# -- Calls --------------------------------------------------------------------------------


def canonical_json(value: Any) -> Any:
    """A deep copy of JSON (so later changes of a client's object do not show)."""
    return json.loads(json.dumps(value))


def lease_json(lease: AnyLease) -> Any:
    return canonical_json(lease.info)


def canonical(op: str, value: Any) -> Any:
    """The canonical JSON of a client method's answer."""
    if op == "get_item":
        item, etag = value
        return {"item": canonical_json(item), "etag": etag}
    if op == "claim_next":
        return [lease_json(lease) for lease in value]
    if op == "claim_item":
        return lease_json(value)
    return canonical_json(value)


@dataclass
class Call:
    """A call ready to make, and how to read its answer."""

    op: str
    thunk: Thunk

    def read(self, value: Any) -> Outcome:
        return Outcome(value=value, canonical=canonical(self.op, value))


def prepare(client: AnyClient, step: Dict[str, Any], saved: Saved, leases: List[AnyLease]) -> Call:
    """The call a step makes, its references resolved. Leases it grants are added to
    ``leases`` (to stop their renewal when the scenario ends)."""
    op = step.get("op")
    if not isinstance(op, str):
        raise ScenarioFailed(f"a step without an op: {json.dumps(step)}")
    raw_args: Dict[str, Any] = dict(step.get("args", {}))
    key = step.get("idempotency_key")
    target: AnyClient = client.with_idempotency_key(key) if key else client

    if op in LEASE_OPS:
        lease = saved.object_of(raw_args.pop("lease", None))
        if not isinstance(lease, (Lease, AsyncLease)):
            raise ScenarioFailed(f"{step['args'].get('lease')} is not a lease")
        args = saved.resolve(raw_args)
        return Call(op, _lease_call(target, lease, op, args))

    if op not in POSITIONAL:
        raise ScenarioFailed(f"unknown op {op!r}")
    args = saved.resolve(raw_args)
    try:
        positional = [args.pop(name) for name in POSITIONAL[op]]
    except KeyError as e:
        raise ScenarioFailed(f"missing argument {e}") from None
    method = getattr(target, op)

    def thunk() -> Any:
        return method(*positional, **args)

    if op in ("claim_next", "claim_item"):
        return Call(op, _tracking(thunk, leases))
    return Call(op, thunk)


def _lease_call(client: AnyClient, lease: AnyLease, op: str, args: Dict[str, Any]) -> Thunk:
    """A call on a saved lease: through the lease object while it can be used; once it is
    finished with (completed or released), through the client's lower-level method."""
    if not lease.finished:
        method = getattr(lease, op)
        return lambda: method(**args)
    lower = getattr(client, op)
    return lambda: lower(lease.pool, lease.id, holder=lease.holder, token=lease.token, **args)


def _tracking(thunk: Thunk, leases: List[AnyLease]) -> Thunk:
    """``thunk``, with the leases it grants added to ``leases``."""

    def note(value: Any) -> Any:
        for lease in value if isinstance(value, list) else [value]:
            leases.append(lease)
        return value

    def tracked() -> Any:
        value = thunk()
        if asyncio.iscoroutine(value):

            async def awaited() -> Any:
                return note(await value)

            return awaited()
        return note(value)

    return tracked


# -- Executors: how calls are made --------------------------------------------------------


class SyncExecutor:
    """Calls through the blocking client; concurrent calls on threads that start
    together."""

    async def one(self, call: Call) -> Outcome:
        try:
            return call.read(call.thunk())
        except LeaseholdError as e:
            return Outcome(error=e)

    async def many(self, calls: List[Call]) -> List[Outcome]:
        barrier = threading.Barrier(len(calls))

        def run(call: Call) -> Outcome:
            barrier.wait(timeout=30)
            try:
                return call.read(call.thunk())
            except LeaseholdError as e:
                return Outcome(error=e)

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(run, calls))


class AsyncExecutor:
    """Calls through the asyncio client; concurrent calls gathered."""

    async def one(self, call: Call) -> Outcome:
        try:
            value = call.thunk()
            return call.read(await value)
        except LeaseholdError as e:
            return Outcome(error=e)

    async def many(self, calls: List[Call]) -> List[Outcome]:
        return list(await asyncio.gather(*(self.one(call) for call in calls)))


Executor = Union[SyncExecutor, AsyncExecutor]


# -- The scenario loop --------------------------------------------------------------------


async def run_scenario(
    client: AnyClient, scenario: Dict[str, Any], run: Optional[str] = None
) -> Report:
    """Runs ``scenario`` through ``client`` with a fresh run id: its report."""
    run = run or uuid.uuid4().hex[:8]
    executor: Executor = AsyncExecutor() if isinstance(client, AsyncClient) else SyncExecutor()
    name = str(scenario.get("name", "?"))
    saved = Saved()
    leases: List[AnyLease] = []
    try:
        for index, raw in enumerate(scenario.get("steps", [])):
            step = {
                k: (substitute_run(v, run) if k in ("args", "idempotency_key", "expect") else v)
                for k, v in raw.items()
            }
            op = step.get("op") or "concurrently"
            try:
                await _run_step(client, executor, step, saved, leases, run)
            except ScenarioFailed as failure:
                return Report(name, False, index, op, str(failure))
            except Exception as e:  # a fault of the client: report it as the step's
                return Report(name, False, index, op, f"raised {type(e).__name__}: {e}")
        return Report(name, True)
    finally:
        # Leases a scenario leaves held stop renewing (nothing is released).
        for lease in leases:
            lease.stop()


async def _run_step(
    client: AnyClient,
    executor: Executor,
    step: Dict[str, Any],
    saved: Saved,
    leases: List[AnyLease],
    run: str,
) -> None:
    if "concurrently" in step or "times" in step:
        if "concurrently" in step:
            subs = [substitute_run(s, run) for s in step["concurrently"]]
        else:
            one = {k: step[k] for k in ("op", "args", "idempotency_key") if k in step}
            subs = [one] * int(step["times"])
        calls = [prepare(client, sub, saved, leases) for sub in subs]
        outcomes = await executor.many(calls)
        # Saved first: an expectation may refer to its own step's answer.
        if "save" in step:
            saved.save(
                step["save"],
                [o.value if o.ok else None for o in outcomes],
                [o.canonical if o.ok else None for o in outcomes],
            )
        if "expect" in step:
            for index, outcome in enumerate(outcomes):
                why = check_expect(step["expect"], outcome, saved)
                if why:
                    raise ScenarioFailed(f"outcome {index}: {why}")
        why = check_together(step.get("together", {}), outcomes)
        if why:
            raise ScenarioFailed(why)
        return

    outcome = await executor.one(prepare(client, step, saved, leases))
    if "save" in step:
        # Saved first: an expectation may refer to its own step's answer (`"token":
        # {"$gt": "$claimed.0.token"}`). An error saves null, as in a concurrent step.
        saved.save(step["save"], outcome.value, outcome.canonical)
    if "expect" in step:
        why = check_expect(step["expect"], outcome, saved)
        if why:
            raise ScenarioFailed(why)
    elif not outcome.ok:
        raise ScenarioFailed(f"expected success, got {outcome.describe()}")


def load(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        scenario: Dict[str, Any] = json.load(f)
    return scenario


__all__ = [
    "Report",
    "ScenarioFailed",
    "Saved",
    "match",
    "check_together",
    "run_scenario",
    "load",
]
