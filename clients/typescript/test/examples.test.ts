/**
 * The examples, compiled with the tests and run against a real `leasehold dev`: the
 * Lambda-style handler allocates one case per invocation however often it is repeated,
 * and workers drain a pool with every item completed exactly once.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client } from "leasehold-client";

import type { Allocation } from "../examples/lambda-handler.js";
import { runWorker, type WorkerReport } from "../examples/worker.js";
import { runId, startDev, waitFor } from "./harness.js";

let stop: () => Promise<void> = async () => undefined;
let url: string;
let client: Client;

before(async () => {
  const s = await startDev();
  stop = s.stop;
  url = s.url;
  client = new Client({ baseUrl: url });
});
after(() => stop());

test("lambda-handler: the same invocation twice allocates the same case; another invocation the next one", async () => {
  const run = runId();
  process.env["LEASEHOLD_URL"] = url;
  process.env["CASES_POOL"] = `cases-${run}`;
  process.env["CASE_COUNTER"] = `case-ids-${run}`;
  await client.addItems(`cases-${run}`, [
    { id: "case-a", priority: 2, data: { subject: "first" } },
    { id: "case-b", priority: 1 },
  ]);
  const { handler } = await import("../examples/lambda-handler.js");

  const first = await handler({ user: "alice" }, { awsRequestId: `req-1-${run}` });
  const repeat = await handler({ user: "alice" }, { awsRequestId: `req-1-${run}` });
  assert.deepEqual(repeat, first, "a repeated invocation gets its first answer");
  assert.ok(first.allocated);
  assert.equal(first.item, "case-a");
  assert.match(first.caseId, /^CASE-\d{8}-00001$/);
  assert.deepEqual(first.data, { subject: "first" });

  const other: Allocation = await handler({ user: "bob" }, { awsRequestId: `req-2-${run}` });
  assert.ok(other.allocated);
  assert.equal(other.item, "case-b");
  assert.match(other.caseId, /^CASE-\d{8}-00002$/);
  assert.ok(other.token > first.token);

  // Two cases went out, two numbers were drawn, each case held by its user with no expiry.
  assert.equal((await client.getCounter(`case-ids-${run}`)).value, 2);
  const a = (await client.getItem(`cases-${run}`, "case-a")).item;
  assert.equal(a.holder, "alice");
  assert.equal(a.lease_expires_at, null);
  assert.equal((await client.getItem(`cases-${run}`, "case-b")).item.holder, "bob");

  const none = await handler({ user: "carol" }, { awsRequestId: `req-3-${run}` });
  assert.deepEqual(none, { allocated: false, reason: "no case is waiting" });
});

test("worker: three workers drain a pool, every item completed exactly once, then stop on the signal", async () => {
  const pool = `jobs-${runId()}`;
  const ids = Array.from({ length: 30 }, (_, i) => `job-${String(i).padStart(2, "0")}`);
  const stopAll = new AbortController();
  const completedBy = new Map<string, string[]>();
  let failedOnce = false;

  // The workers start before the pool exists: their claims wait on it.
  const workers = ["w1", "w2", "w3"].map((holder) =>
    runWorker(client, pool, {
      holder,
      signal: stopAll.signal,
      leaseMs: 5_000,
      waitMs: 10_000,
      handle: async (job) => {
        assert.equal(job.signal.aborted, false);
        await new Promise((done) => setTimeout(done, 5));
        if (job.id === "job-07" && !failedOnce) {
          failedOnce = true;
          throw new Error("a transient failure: the item goes back to the pool");
        }
        completedBy.set(job.id, [...(completedBy.get(job.id) ?? []), holder]);
        return { by: holder, token: job.token };
      },
    }),
  );
  await client.addItems(
    pool,
    ids.map((id) => ({ id })),
  );
  await waitFor("every item done", async () => (await client.getPool(pool)).counts.done === ids.length, {
    timeoutMs: 20_000,
    intervalMs: 50,
  });
  const stopping = Date.now();
  stopAll.abort();
  const reports: WorkerReport[] = await Promise.all(workers);
  assert.ok(Date.now() - stopping < 2_000, "the workers stop at once, not at the end of their wait");

  assert.deepEqual([...completedBy.keys()].sort(), ids);
  for (const [id, by] of completedBy) assert.equal(by.length, 1, `${id} was completed by ${by.join(", ")}`);
  const total = reports.reduce((sum, r) => ({
    completed: sum.completed + r.completed,
    lost: sum.lost + r.lost,
    failed: sum.failed + r.failed,
  }));
  assert.deepEqual(total, { completed: 30, lost: 0, failed: 1 });

  // The log agrees: one completion per item, and the failed one was released and retried.
  const events = (await client.listEvents(pool, { limit: 1000 })).events;
  const completions = events.filter((e) => e.type === "completed").map((e) => e.item);
  assert.deepEqual([...completions].sort(), ids);
  assert.equal((await client.getItem(pool, "job-07")).item.attempts, 2);
  const done = await client.getItem(pool, "job-00");
  assert.equal(done.item.state, "done");
  assert.equal(typeof (done.item.data as { by?: unknown }).by, "string");
});
