"""The conformance suite: every scenario in ``clients/conformance/*.json``, run through
the blocking client (concurrency by threads) and the asyncio client (``gather``), against
``$LEASEHOLD_URL`` if set, else the session's ``leasehold dev``. Then the runner's own
checks: it must fail a scenario that expects what does not happen."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conformance_runner import (
    Outcome,
    Report,
    Saved,
    check_together,
    load,
    match,
    run_scenario,
)
from conftest import close_api, make_api
from devserver import PACKAGE_DIR

SCENARIO_DIR = PACKAGE_DIR.parent / "conformance"
SCENARIOS: List[Path] = sorted(SCENARIO_DIR.glob("*.json"))
#: Scenarios that expect what never happens: every runner must report them failed.
MUST_FAIL: List[Path] = sorted((SCENARIO_DIR / "must-fail").glob("*.json"))


@pytest.fixture(scope="module")
def conformance_url(request: pytest.FixtureRequest) -> str:
    """The server the scenarios run against."""
    url = os.environ.get("LEASEHOLD_URL")
    if url:
        return url
    dev = request.getfixturevalue("dev")
    return str(dev.url)


async def run_with(flavour: str, url: str, scenario: Dict[str, Any]) -> Report:
    client = make_api(flavour, url)
    try:
        return await run_scenario(client, scenario)
    finally:
        await close_api(client)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario(path: Path, flavour: str, conformance_url: str) -> None:
    report = await run_with(flavour, conformance_url, load(str(path)))
    assert report.passed, report.describe()


def test_there_are_scenarios() -> None:
    assert SCENARIOS, f"no scenarios in {SCENARIO_DIR}"


# -- The runner can fail ------------------------------------------------------------------


@pytest.mark.parametrize("path", MUST_FAIL, ids=[p.stem for p in MUST_FAIL])
async def test_a_scenario_that_must_fail_is_reported_failed(
    path: Path, flavour: str, conformance_url: str
) -> None:
    report = await run_with(flavour, conformance_url, load(str(path)))
    assert not report.passed, f"{path.name} passed: the runner would pass anything"
    assert report.step is not None and report.why


WRONG_CODE = {
    "name": "expects the wrong refusal",
    "steps": [
        {"op": "add_items", "args": {"pool": "w{run}", "items": [{"id": "x"}]}},
        {"op": "claim_item", "args": {"pool": "w{run}", "id": "x", "holder": "alice"}},
        {
            "op": "claim_item",
            "args": {"pool": "w{run}", "id": "x", "holder": "bob"},
            "expect": {"error": {"status": 409, "code": "lease_lost"}},
        },
    ],
}

TWO_GRANTS_OF_ONE = {
    "name": "expects two grants of one item",
    "steps": [
        {"op": "add_items", "args": {"pool": "g{run}", "items": [{"id": "only"}]}},
        {
            "times": 2,
            "op": "claim_next",
            "args": {"pool": "g{run}", "holder": "h"},
            "together": {"ok": 2, "collect": {"path": "id", "count": 2}},
        },
    ],
}

MISSING_REFERENCE = {
    "name": "refers to what was never saved",
    "steps": [
        {"op": "add_items", "args": {"pool": "m{run}", "items": [{"id": "x"}]}},
        {"op": "renew", "args": {"lease": "$never"}},
    ],
}

WRONG_RESULT = {
    "name": "expects a token lower than the one before",
    "steps": [
        {"op": "add_items", "args": {"pool": "t{run}", "items": [{"id": "a"}, {"id": "b"}]}},
        {"op": "claim_next", "args": {"pool": "t{run}", "holder": "h"}, "save": "first"},
        {
            "op": "claim_next",
            "args": {"pool": "t{run}", "holder": "h"},
            "expect": {"result": [{"token": {"$gt": "$first.0.token"}, "id": "a"}]},
        },
    ],
}


@pytest.mark.parametrize(
    ("scenario", "step", "op", "why"),
    [
        (WRONG_CODE, 2, "claim_item", "already_leased"),
        # Both calls succeed (one with no lease): the count of granted ids fails.
        (TWO_GRANTS_OF_ONE, 1, "claim_next", "collect id: expected 2 values, got 1"),
        (MISSING_REFERENCE, 1, "renew", "nothing saved as 'never'"),
        (WRONG_RESULT, 2, "claim_next", '[0].id: expected "a", got "b"'),
    ],
    ids=["wrong-code", "two-grants-of-one", "missing-reference", "wrong-result"],
)
async def test_the_runner_reports_a_scenario_that_does_not_hold(
    scenario: Dict[str, Any], step: int, op: str, why: str, flavour: str, conformance_url: str
) -> None:
    report = await run_with(flavour, conformance_url, scenario)
    assert not report.passed
    assert (report.step, report.op) == (step, op), report.describe()
    assert why in report.why, report.describe()


def test_together_counts_every_failure() -> None:
    outcomes = [Outcome(value=[], canonical=[{"id": "only"}]), Outcome(value=[], canonical=[])]
    assert check_together({"ok": 2, "collect": {"path": "id", "count": 1}}, outcomes) is None
    assert check_together({"ok": 1}, outcomes) == "expected 1 to succeed, 2 did (failures: [])"
    assert check_together({"errors": {"lease_lost": 1}}, outcomes) is not None


# -- Matching, by the README's rules ------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        (2, 2.0),
        ({"a": 1}, {"a": 1, "b": 2}),
        ({"missing": None}, {}),
        ([1, {"x": "y"}], [1, {"x": "y", "z": 0}]),
        ({"$type": "integer"}, 3),
        ({"$type": "number"}, 3.5),
        ({"$type": "null"}, None),
        ({"$type": "array"}, []),
        ({"$len": 2}, [0, 0]),
        ({"$len": 3}, "abc"),
        ({"$prefix": [1, 2]}, [1, 2, 3]),
        ({"$regex": "^CASE-[0-9]{8}$"}, "CASE-20260110"),
        ({"$gt": 1}, 2),
        ({"$ge": 2}, 2),
        ({"$gt": "$saved.n"}, 6),
        ({"$ne": "x"}, "y"),
        ("$saved.list.1", "b"),
        ("$saved", {"n": 5, "list": ["a", "b"]}),
    ],
)
def test_matches(expected: Any, actual: Any) -> None:
    saved = Saved()
    saved.save("saved", None, {"n": 5, "list": ["a", "b"]})
    assert match(expected, actual, saved) is None


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        (2, "2"),
        (True, 1),
        (None, 0),
        ({"a": 1}, {"a": 2}),
        ({"a": 1}, [1]),
        ([1], [1, 2]),
        ({"$type": "integer"}, 3.5),
        ({"$type": "string"}, None),
        ({"$len": 2}, [0]),
        ({"$prefix": [1, 2]}, [1]),
        ({"$regex": "^a"}, "ba"),
        ({"$gt": 2}, 2),
        ({"$ge": 3}, 2),
        ({"$gt": "$saved.n"}, 5),
        ({"$ne": "x"}, "x"),
        ("$saved.list.0", "b"),
    ],
)
def test_mismatches(expected: Any, actual: Any) -> None:
    saved = Saved()
    saved.save("saved", None, {"n": 5, "list": ["a", "b"]})
    assert match(expected, actual, saved) is not None
