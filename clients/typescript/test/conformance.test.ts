/**
 * The conformance suite (clients/conformance/*.json), one test per scenario file, run
 * through this client against LEASEHOLD_URL or a `leasehold dev` of its own; and proof
 * that the runner fails a scenario that does not hold (the suite's must-fail/ files, and
 * wrong scenarios written here).
 */

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { Client } from "leasehold-client";

import { runScenario, type Report, type Scenario } from "./conformance-runner.js";
import { packageRoot, server } from "./harness.js";

const suite = join(packageRoot(), "..", "conformance");
/** The `*.json` files of a directory, by name (none if it does not exist). */
function scenarios(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .sort();
}
const files = scenarios(suite);
/** Deliberately wrong scenarios, which every runner must fail. */
const mustFail = scenarios(join(suite, "must-fail"));

let stop: () => Promise<void> = async () => undefined;
let client: Client;

before(async () => {
  const s = await server();
  stop = s.stop;
  const apiKey = process.env["LEASEHOLD_KEY"];
  client = new Client({ baseUrl: s.url, ...(apiKey ? { apiKey } : {}) });
});
after(() => stop());

function explain(report: Report): string {
  return `${report.name}: failed at step ${report.step ?? "?"} (${report.op ?? "?"}): ${report.why ?? ""}`;
}

describe("conformance scenarios", () => {
  if (files.length === 0) {
    test("no scenario files", { skip: `none in ${suite}` }, () => undefined);
  }
  for (const file of files) {
    test(file, async () => {
      const scenario = JSON.parse(readFileSync(join(suite, file), "utf8")) as Scenario;
      const report = await runScenario(client, scenario);
      assert.ok(report.passed, explain(report));
    });
  }
});

describe("the runner fails what does not hold", () => {
  /** Runs a scenario expected to fail, and returns its report. */
  async function failing(scenario: Scenario): Promise<Report> {
    const report = await runScenario(client, scenario);
    assert.equal(report.passed, false, `the runner passed a wrong scenario: ${scenario.name}`);
    return report;
  }

  for (const file of mustFail) {
    test(`must-fail/${file}`, async () => {
      const scenario = JSON.parse(readFileSync(join(suite, "must-fail", file), "utf8")) as Scenario;
      const report = await failing(scenario);
      // Failed on the answer it expects wrongly, not on a fault of running it.
      assert.equal(report.kind, "mismatch", explain(report));
    });
  }

  const oneItem = { op: "add_items", args: { pool: "w{run}", items: [{ id: "only" }] } };

  test("the same scenario with the right expectation passes", async () => {
    const report = await runScenario(client, {
      name: "one grant",
      steps: [
        oneItem,
        {
          op: "claim_next",
          args: { pool: "w{run}", holder: "a", count: 2 },
          save: "got",
          expect: { result: [{ id: "only", token: { $type: "integer" } }] },
        },
        { op: "complete", args: { lease: "$got.0" }, expect: { result: { state: "done" } } },
        { op: "complete", args: { lease: "$got.0" }, expect: { error: { status: 409, code: "lease_lost" } } },
      ],
    });
    assert.ok(report.passed, explain(report));
  });

  test("two grants expected where one happens", async () => {
    const report = await failing({
      name: "wrong count",
      steps: [
        oneItem,
        { op: "claim_next", args: { pool: "w{run}", holder: "a", count: 2 }, expect: { result: { $len: 2 } } },
      ],
    });
    assert.equal(report.step, 1);
    assert.equal(report.op, "claim_next");
    assert.equal(report.kind, "mismatch");
    assert.match(report.why ?? "", /length 2/);
  });

  test("a wrong error code", async () => {
    const report = await failing({
      name: "wrong code",
      steps: [
        {
          op: "claim_next",
          args: { pool: "missing-{run}", holder: "a" },
          expect: { error: { code: "already_leased" } },
        },
      ],
    });
    assert.equal(report.step, 0);
    assert.match(report.why ?? "", /already_leased/);
  });

  test("success expected where the call fails, and failure expected where it succeeds", async () => {
    const report = await failing({
      name: "no such pool",
      steps: [{ op: "get_pool", args: { pool: "missing-{run}" } }],
    });
    assert.match(report.why ?? "", /not_found/);
    await failing({
      name: "it works",
      steps: [oneItem, { op: "get_item", args: { pool: "w{run}", id: "only" }, expect: { error: { status: 404 } } }],
    });
  });

  test("concurrent outcomes that do not add up", async () => {
    const report = await failing({
      name: "counted wrong",
      steps: [
        {
          times: 3,
          op: "next_counter",
          args: { name: "c{run}" },
          together: { ok: 3, collect: { path: "values", distinct: true, range: [1, 4] } },
        },
      ],
    });
    assert.match(report.why ?? "", /1\.\.4/);
    await failing({
      name: "errors not counted",
      steps: [
        oneItem,
        {
          concurrently: [
            { op: "claim_item", args: { pool: "w{run}", id: "only", holder: "a" } },
            { op: "claim_item", args: { pool: "w{run}", id: "only", holder: "b" } },
          ],
          together: { ok: 1 },
        },
      ],
    });
  });

  test("a scenario that cannot be run as written fails as such", async () => {
    const unknownOp = await failing({ name: "unknown op", steps: [{ op: "claim_everything", args: {} }] });
    assert.equal(unknownOp.kind, "scenario");
    const dangling = await failing({
      name: "a reference to nothing",
      steps: [{ op: "get_pool", args: { pool: "$nothing.name" } }],
    });
    assert.equal(dangling.kind, "scenario");
    assert.match(dangling.why ?? "", /nothing was saved as nothing/);
  });

  test("matchers, references and unknown arguments", async () => {
    await failing({
      name: "regex",
      steps: [
        {
          op: "next_counter",
          args: { name: "c{run}", format: "X-{seq}" },
          expect: { result: { ids: [{ $regex: "^Y-" }] } },
        },
      ],
    });
    await failing({
      name: "gt a reference",
      steps: [
        { op: "next_counter", args: { name: "c{run}" }, save: "first" },
        { op: "next_counter", args: { name: "c{run}" }, expect: { result: { values: [{ $gt: "$first.values.1" }] } } },
      ],
    });
    await failing({
      name: "ne",
      steps: [{ op: "next_counter", args: { name: "c{run}" }, expect: { result: { values: { $ne: [1] } } } }],
    });
    await failing({
      name: "a key the answer lacks reads as null",
      steps: [{ op: "next_counter", args: { name: "c{run}" }, expect: { result: { ids: { $type: "array" } } } }],
    });
    await failing({
      name: "unknown argument",
      steps: [{ op: "next_counter", args: { name: "c{run}", colour: "red" } }],
    });
  });
});
