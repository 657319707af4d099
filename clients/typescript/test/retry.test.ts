/**
 * Retries against real services: a rate-limited `leasehold dev` answering 429 with
 * Retry-After, a port nobody listens on (no answer), and refusals that must not be retried.
 */

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";

import {
  Client,
  DEFAULT_RETRY_POLICY,
  LeaseholdError,
  backoffCeiling,
  isOutcomeUnknown,
  retryDelay,
  type RetryInfo,
} from "leasehold-client";

import { rejection, runId, startDev, waitFor, type Dev } from "./harness.js";

describe("against a rate-limited service (2 requests a second, bursts of 1)", () => {
  let dev: Dev;
  before(async () => {
    dev = await startDev(["--rate-limit", "2", "--rate-burst", "1"]);
  });
  after(() => dev.stop());

  test("a burst of calls all succeed through 429s, each retry waiting at least its Retry-After", async () => {
    const retries: RetryInfo[] = [];
    const client = new Client({
      baseUrl: dev.url,
      retries: { maxAttempts: 10 },
      onRetry: (info) => retries.push(info),
    });
    const name = `burst-${runId()}`;
    const started = Date.now();
    const times: number[] = [];
    const timed = async <T>(call: Promise<T>): Promise<T> => {
      const value = await call;
      times.push(Date.now() - started);
      return value;
    };
    const [tenant, first, second, third] = await Promise.all([
      timed(client.tenant()),
      timed(client.nextCounter(name)),
      timed(client.nextCounter(name)),
      timed(client.nextCounter(name)),
    ]);
    assert.equal(tenant.tenant, "dev");
    // Every draw was applied once: the refused attempts drew nothing.
    assert.deepEqual([first, second, third].flatMap((d) => d.values).sort(), [1, 2, 3]);

    assert.ok(retries.length >= 3, `${retries.length} retries`);
    assert.equal(client.retryCount, retries.length);
    for (const retry of retries) {
      assert.equal(retry.status, 429);
      assert.match(retry.cause, /^429 rate_limited/);
      assert.equal(retry.retryAfterMs, 1000);
      assert.ok(retry.delayMs >= 1000, `waited only ${retry.delayMs} ms`);
      assert.ok(retry.delayMs <= 1000 + DEFAULT_RETRY_POLICY.baseDelayMs, `waited ${retry.delayMs} ms`);
    }
    // A write keeps its key across its retries; the three draws had three keys.
    const writeKeys = retries.filter((r) => r.method === "POST").map((r) => r.idempotencyKey);
    assert.ok(writeKeys.every((key) => key !== undefined && /^[0-9a-f-]{36}$/.test(key)));
    assert.ok(new Set(writeKeys).size <= 3);
    assert.ok(retries.filter((r) => r.method === "GET").every((r) => r.idempotencyKey === undefined));
    // The last call had to wait out at least one Retry-After.
    assert.ok(Math.max(...times) >= 1000, `done after ${Math.max(...times)} ms`);
  });

  test("without retries a 429 is thrown with its Retry-After; giving up on it is not an unknown outcome", async () => {
    const never = new Client({ baseUrl: dev.url, retries: 0 });
    const twice = new Client({ baseUrl: dev.url, retries: { maxAttempts: 2, maxElapsedMs: 60_000 } });
    const hurried = new Client({ baseUrl: dev.url, retries: { maxElapsedMs: 500 } });
    const outcomes = await Promise.allSettled([
      never.nextCounter(`n-${runId()}`),
      never.nextCounter(`n-${runId()}`),
      twice.tenant(),
      twice.tenant(),
      twice.tenant(),
      hurried.tenant(),
      hurried.tenant(),
    ]);
    const errors = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason as unknown] : []));
    assert.ok(errors.length >= 3, `${errors.length} failures`);
    for (const error of errors) {
      assert.ok(error instanceof LeaseholdError);
      assert.equal(error.code, "rate_limited");
      assert.equal(error.status, 429);
      assert.equal(error.retryAfterMs, 1000);
      assert.equal(error.outcomeUnknown, false, "a 429 is answered before anything is done");
      assert.ok(error.kind === "problem" || error.kind === "gave_up", error.kind);
      if (error.kind === "gave_up") assert.match(error.message, /^gave up after \d attempts? in \d+ ms: 429/);
    }
    // Without retries, a 429 is given up on at once: never a refusal.
    for (const outcome of outcomes.slice(0, 2)) {
      if (outcome.status === "fulfilled") continue;
      const error = outcome.reason as LeaseholdError;
      assert.equal(error.kind, "gave_up");
      assert.equal(error.attempts, 1);
      assert.match(error.message, /^gave up after 1 attempt in \d+ ms: 429 rate_limited/);
    }
    // The hurried client gives up at once rather than wait past its time.
    const hurriedErrors = outcomes
      .slice(5)
      .flatMap((o) => (o.status === "rejected" ? [o.reason as LeaseholdError] : []));
    for (const error of hurriedErrors) {
      assert.equal(error.kind, "gave_up");
      assert.equal(error.attempts, 1);
    }
  });
});

describe("against a service allowing 1 request a second (bursts of 1)", () => {
  let dev: Dev;
  before(async () => {
    dev = await startDev(["--rate-limit", "1", "--rate-burst", "1"]);
  });
  after(() => dev.stop());

  /** Spends the tenant's allowance: asks until the service answers 429. */
  async function exhaust(): Promise<void> {
    await waitFor("a 429", async () => (await fetch(`${dev.url}/v1/tenant`)).status === 429, { intervalMs: 0 });
  }

  test("a lease whose renewals meet 429s is not lost, even with retries: 0; the guard waits out Retry-After", async () => {
    // What the guard's client sends and gets, through the real fetch (nothing answered
    // for it): when each renewal went out and how it was answered.
    const renewals: { sentAt: number; answeredAt: number; status: number }[] = [];
    let limited = false;
    const recording: typeof fetch = async (input, init) => {
      const sentAt = performance.now();
      const response = await fetch(input, init);
      if (String(input).endsWith("/renew")) {
        renewals.push({ sentAt, answeredAt: performance.now(), status: response.status });
        if (response.status === 429) limited = true;
      }
      return response;
    };
    const guarded = new Client({ baseUrl: dev.url, retries: 0, fetch: recording });
    const patient = new Client({ baseUrl: dev.url, retries: { maxAttempts: 20 } });
    const pool = `r${runId()}`;
    await patient.addItems(pool, [{ id: "a" }]);
    await exhaust();
    // The claim itself, through the client without retries: once the service takes it.
    const lease = await waitFor("the claim to be let through", async () => {
      try {
        return (await guarded.claimNext(pool, { holder: "alice", leaseMs: 4_000 }))[0];
      } catch (error) {
        if (error instanceof LeaseholdError && error.status === 429) return undefined;
        throw error;
      }
    });
    // Another caller of the same tenant takes every request the limit allows, until a
    // renewal has been refused with 429.
    const competing = (async () => {
      while (!limited && !lease.lost.aborted) {
        await fetch(`${dev.url}/v1/tenant`);
        await new Promise((done) => setTimeout(done, 20));
      }
    })();
    await waitFor("a renewal refused with 429", () => limited || lease.lost.aborted, { timeoutMs: 10_000 });
    await competing;
    assert.equal(lease.lost.aborted, false, `lost: ${String(lease.lost.reason)}`);
    const refused = renewals.findIndex((r) => r.status === 429);
    await waitFor(
      "a renewal to get through after the 429",
      () => renewals.slice(refused).some((r) => r.status === 200) || lease.lost.aborted,
      { timeoutMs: 10_000 },
    );
    assert.equal(lease.lost.aborted, false, `lost: ${String(lease.lost.reason)}`);
    assert.equal(lease.state, "held");
    assert.ok((lease.remainingMs ?? 0) > 0);
    // The retry waited out the Retry-After (1 s), which ended well within the lease.
    const [first429, next] = renewals.slice(refused);
    assert.ok(first429 && next);
    assert.ok(next.sentAt - first429.answeredAt >= 1000, `retried after ${next.sentAt - first429.answeredAt} ms`);
    lease.stop();
    await patient.release(pool, "a", { holder: "alice", token: lease.token });
  });

  test("a call waiting to retry after a 429 is given up at once when its signal aborts", async () => {
    const controller = new AbortController();
    const retries: RetryInfo[] = [];
    const client = new Client({
      baseUrl: dev.url,
      retries: { maxAttempts: 10 },
      onRetry: (info) => {
        retries.push(info);
        // Well into the second-long wait the 429 asked for.
        setTimeout(() => controller.abort(), 100);
      },
    });
    await exhaust();
    const started = performance.now();
    const error = await rejection(client.getPool(`r${runId()}`, { signal: controller.signal }));
    const elapsed = performance.now() - started;
    assert.ok(error instanceof DOMException && error.name === "AbortError", String(error));
    assert.equal(retries.length, 1);
    assert.equal(retries[0]?.status, 429);
    assert.ok(elapsed < 800, `ended ${elapsed} ms after it began, Retry-After being 1000 ms`);
  });
});

describe("against a normal service", () => {
  let dev: Dev;
  before(async () => {
    dev = await startDev();
  });
  after(() => dev.stop());

  test("a refusal (409) is never retried", async () => {
    const retries: RetryInfo[] = [];
    const client = new Client({ baseUrl: dev.url, onRetry: (info) => retries.push(info) });
    const pool = `r${runId()}`;
    await client.addItems(pool, [{ id: "a" }]);
    const mine = await client.claimItem(pool, "a", { holder: "alice", leaseMs: 60_000 });
    const taken = await rejection(client.claimItem(pool, "a", { holder: "bob" }));
    assert.ok(taken instanceof LeaseholdError);
    assert.equal(taken.code, "already_leased");
    assert.equal(taken.kind, "problem");
    assert.equal(taken.attempts, 1);
    const missing = await rejection(client.getItem(pool, "nobody"));
    assert.ok(missing instanceof LeaseholdError && missing.attempts === 1);
    assert.equal(retries.length, 0);
    assert.equal(client.retryCount, 0);
    await mine.complete();
  });

  test("a write to a port nobody listens on is retried with one key, then given up: outcome unknown", async () => {
    const port = await closedPort();
    const retries: RetryInfo[] = [];
    const client = new Client({
      baseUrl: `http://127.0.0.1:${port}`,
      retries: { maxAttempts: 3, baseDelayMs: 10 },
      onRetry: (info) => retries.push(info),
    });
    const error = await rejection(client.nextCounter("c"));
    assert.ok(error instanceof LeaseholdError);
    assert.equal(error.kind, "gave_up");
    assert.equal(error.attempts, 3);
    assert.equal(error.status, 0);
    assert.equal(error.code, "unknown");
    assert.equal(error.outcomeUnknown, true);
    assert.ok(isOutcomeUnknown(error));
    assert.match(error.message, /^gave up after 3 attempts in \d+ ms: no answer from Leasehold/);
    assert.equal(retries.length, 2);
    assert.ok(retries.every((r) => r.status === 0 && r.cause.startsWith("no answer")));
    assert.equal(new Set(retries.map((r) => r.idempotencyKey)).size, 1);
    assert.equal(retries[0]?.idempotencyKey, error.idempotencyKey);

    // With no retries, the same failure is `no_answer`.
    const once = await rejection(new Client({ baseUrl: `http://127.0.0.1:${port}`, retries: 0 }).tenant());
    assert.ok(once instanceof LeaseholdError);
    assert.equal(once.kind, "no_answer");
    assert.equal(once.outcomeUnknown, true);
  });

  test("an attempt that outlasts timeoutMs is abandoned and retried (the service frozen meanwhile)", async () => {
    const retries: RetryInfo[] = [];
    const client = new Client({
      baseUrl: dev.url,
      timeoutMs: 200,
      retries: { maxAttempts: 4, baseDelayMs: 10, maxElapsedMs: 5_000 },
      onRetry: (info) => retries.push(info),
    });
    dev.pause();
    let error: unknown;
    try {
      error = await rejection(client.tenant());
    } finally {
      dev.resume();
    }
    assert.ok(error instanceof LeaseholdError);
    assert.equal(error.kind, "gave_up");
    assert.equal(error.attempts, 4);
    assert.ok(error.elapsedMs >= 800, `gave up after ${error.elapsedMs} ms`);
    assert.ok(
      retries.every((r) => r.cause === "timeout after 200 ms"),
      JSON.stringify(retries),
    );
    // And once it runs again, the same client gets through.
    assert.equal((await client.tenant()).tenant, "dev");
  });

  test("withIdempotencyKey: a repeated call is answered with the first answer, not applied twice", async () => {
    const client = new Client({ baseUrl: dev.url });
    const name = `k-${runId()}`;
    const key = crypto.randomUUID();
    const first = await client.withIdempotencyKey(key).nextCounter(name, { count: 2 });
    const again = await client.withIdempotencyKey(key).nextCounter(name, { count: 2 });
    assert.deepEqual(again.values, first.values);
    assert.equal((await client.getCounter(name)).value, 2);
  });
});

describe("the backoff", () => {
  test("doubles from the base delay up to the cap, with full jitter below the ceiling", () => {
    const policy = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000, maxElapsedMs: 60_000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((n) => backoffCeiling(policy, n)),
      [100, 200, 400, 800, 1000, 1000],
    );
    const delays = Array.from({ length: 200 }, () => retryDelay(policy, 2));
    assert.ok(delays.every((d) => d >= 0 && d <= 400));
    assert.ok(new Set(delays).size > 100, "jittered");
    assert.ok(delays.some((d) => d < 200));
  });

  test("never shortens a Retry-After, even past the cap", () => {
    const policy = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000, maxElapsedMs: 60_000 };
    for (let i = 0; i < 100; i++) {
      const d = retryDelay(policy, 0, 3000);
      assert.ok(d >= 3000 && d <= 3100, String(d));
    }
  });

  test("retries: a number of retries or a policy; nonsense is refused", () => {
    assert.equal(new Client({ baseUrl: "http://127.0.0.1:1", retries: 0 }).retryPolicy.maxAttempts, 1);
    assert.equal(new Client({ baseUrl: "http://127.0.0.1:1", retries: 3 }).retryPolicy.maxAttempts, 4);
    const custom = new Client({ baseUrl: "http://127.0.0.1:1", retries: { maxDelayMs: 50 } }).retryPolicy;
    assert.deepEqual(custom, { ...DEFAULT_RETRY_POLICY, maxDelayMs: 50 });
    assert.throws(() => new Client({ baseUrl: "http://127.0.0.1:1", retries: -1 }), RangeError);
    assert.throws(() => new Client({ baseUrl: "http://127.0.0.1:1", retries: { maxAttempts: 0 } }), RangeError);
  });
});

/** A port on 127.0.0.1 that nothing listens on (one just closed). */
async function closedPort(): Promise<number> {
  const listener = createServer();
  await new Promise<void>((done) => listener.listen(0, "127.0.0.1", done));
  const address = listener.address();
  await new Promise<void>((done) => listener.close(() => done()));
  assert.ok(address !== null && typeof address === "object");
  return address.port;
}
