/**
 * Every method of the client against a real `leasehold dev`: pools, items with their
 * preconditions, leases, counters, events and errors.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  Client,
  LeaseholdError,
  PROBLEM_CODES,
  isOutcomeUnknown,
  isProblem,
  type PoolEvent,
  type RetryInfo,
} from "leasehold-client";

import { rejection, runId, startDev } from "./harness.js";

let stop: () => Promise<void> = async () => undefined;
let client: Client;
let url: string;

before(async () => {
  const s = await startDev();
  stop = s.stop;
  url = s.url;
  client = new Client({ baseUrl: url });
});
after(() => stop());

describe("pools", () => {
  test("putPool creates and changes, getPool reads, listPools pages, deletePool removes", async () => {
    const run = runId();
    const created = await client.putPool(`p${run}-a`, { leaseMs: 60_000, maxAttempts: 3, keepDoneMs: null });
    assert.equal(created.name, `p${run}-a`);
    assert.equal(created.config.lease_ms, 60_000);
    assert.equal(created.config.max_attempts, 3);
    assert.equal(created.config.keep_done_ms, null);
    assert.deepEqual(created.counts, { available: 0, leased: 0, delayed: 0, done: 0, dead: 0 });

    const changed = await client.putPool(`p${run}-a`, { maxLeasesPerHolder: 2, paused: true });
    assert.equal(changed.config.lease_ms, 60_000, "a setting left out keeps its value");
    assert.equal(changed.config.max_leases_per_holder, 2);
    assert.equal(changed.config.paused, true);

    const read = await client.getPool(`p${run}-a`);
    assert.equal(read.config.max_leases_per_holder, 2);
    assert.equal(typeof read.created_at, "string");

    await client.putPool(`p${run}-b`);
    await client.putPool(`p${run}-c`, { requireIfMatch: true, maxEvents: 10, keepDeadMs: 0 });
    const page = await client.listPools({ after: `p${run}-`, limit: 2 });
    assert.deepEqual(
      page.pools.map((p) => p.name),
      [`p${run}-a`, `p${run}-b`],
    );
    assert.equal(page.next_after, `p${run}-b`);
    const next = await client.listPools({ after: page.next_after ?? undefined, limit: 1 });
    assert.deepEqual(
      next.pools.map((p) => p.name),
      [`p${run}-c`],
    );

    await client.deletePool(`p${run}-b`);
    const gone = await rejection(client.getPool(`p${run}-b`));
    assert.ok(isProblem(gone, "not_found"));
    assert.equal(gone.status, 404);
    assert.match(gone.detail, new RegExp(`no pool named p${run}-b`));
    assert.ok(isProblem(await rejection(client.deletePool(`p${run}-b`)), "not_found"));
  });

  test("tenant() says who the caller is and its limits", async () => {
    const tenant = await client.tenant();
    assert.equal(tenant.tenant, "dev");
    assert.ok(tenant.pools >= 0);
    assert.ok(tenant.limits.max_pools_per_tenant > 0);
  });

  test("ready() resolves against a ready service", async () => {
    await client.ready();
  });
});

describe("items", () => {
  test("addItems reports created and existing, and keeps existing data", async () => {
    const pool = `i${runId()}`;
    const first = await client.addItems(pool, [
      { id: "a", data: { n: 1 } },
      { id: "b", priority: 5 },
    ]);
    assert.deepEqual(first, { created: ["a", "b"], existing: [] });
    const again = await client.addItems(pool, [{ id: "a", data: { n: 99 } }, { id: "c" }]);
    assert.deepEqual(again, { created: ["c"], existing: ["a"] });
    const { item, etag } = await client.getItem(pool, "a");
    assert.equal(etag, '"1"');
    assert.deepEqual(item.data, { n: 1 });
    assert.equal(item.state, "available");
  });

  test("scheduled items start delayed (delayMs, availableAt as a Date)", async () => {
    const pool = `i${runId()}`;
    await client.addItems(pool, [
      { id: "later", delayMs: 600_000 },
      { id: "monday", availableAt: new Date(Date.now() + 3_600_000) },
    ]);
    const later = (await client.getItem(pool, "later")).item;
    assert.equal(later.state, "delayed");
    assert.equal(typeof later.available_at, "string");
    assert.equal((await client.getItem(pool, "monday")).item.state, "delayed");
  });

  test("putItem under If-Match, If-None-Match, expected_version and Lease-Token", async () => {
    const pool = `i${runId()}`;
    const made = await client.putItem(pool, "x", { n: 1 }, { ifNoneMatch: "*" });
    assert.equal(made.created, true);
    assert.equal(made.etag, '"1"');
    assert.equal(made.item.version, 1);

    const replaced = await client.putItem(pool, "x", { n: 2 }, { ifMatch: made.etag, priority: 3 });
    assert.equal(replaced.created, false);
    assert.equal(replaced.item.version, 2);
    assert.equal(replaced.item.priority, 3);

    const stale = await rejection(client.putItem(pool, "x", { n: 3 }, { ifMatch: 1 }));
    assert.ok(isProblem(stale, "precondition_failed"));
    assert.equal(stale.status, 412);
    assert.deepEqual(stale.current, { version: 2, state: "available", holder: null });

    const conflict = await rejection(client.putItem(pool, "x", { n: 3 }, { expectedVersion: 1 }));
    assert.ok(isProblem(conflict, "version_conflict"));
    assert.equal(conflict.current?.version, 2);
    assert.equal((await client.putItem(pool, "x", { n: 3 }, { expectedVersion: 2 })).item.version, 3);

    const exists = await rejection(client.putItem(pool, "x", { n: 4 }, { ifNoneMatch: "*" }));
    assert.ok(isProblem(exists, "precondition_failed"));

    const lease = await client.claimItem(pool, "x", { holder: "h", leaseMs: 60_000 });
    try {
      const wrongToken = await rejection(client.putItem(pool, "x", { n: 5 }, { leaseToken: lease.token + 1000 }));
      assert.ok(isProblem(wrongToken, "lease_lost"));
      assert.equal(wrongToken.current?.holder, "h");
      const written = await client.putItem(pool, "x", { n: 5 }, { leaseToken: lease.token });
      assert.deepEqual(written.item.data, { n: 5 });
      assert.equal(written.item.holder, "h");
    } finally {
      await lease.release();
    }
  });

  test("a pool requiring preconditions refuses a blind write with 428", async () => {
    const pool = `i${runId()}`;
    await client.putPool(pool, { requireIfMatch: true });
    const blind = await rejection(client.putItem(pool, "y", { a: 1 }));
    assert.ok(isProblem(blind, "precondition_required"));
    assert.equal(blind.status, 428);
  });

  test("patchItem merges (null removes) under If-Match; 404 for a missing item", async () => {
    const pool = `i${runId()}`;
    await client.addItems(pool, [{ id: "a", data: { n: 1, keep: true } }]);
    const patched = await client.patchItem(pool, "a", { tag: "x", n: null });
    assert.deepEqual(patched.item.data, { keep: true, tag: "x" });
    assert.equal(patched.etag, '"2"');
    const stale = await rejection(client.patchItem(pool, "a", { tag: "y" }, { ifMatch: '"1"' }));
    assert.ok(isProblem(stale, "precondition_failed"));
    assert.equal(stale.current?.version, 2);
    assert.ok(isProblem(await rejection(client.patchItem(pool, "nobody", { a: 1 })), "not_found"));
  });

  test("deleteItem under If-Match; then 404", async () => {
    const pool = `i${runId()}`;
    await client.addItems(pool, [{ id: "d" }]);
    assert.ok(isProblem(await rejection(client.deleteItem(pool, "d", { ifMatch: 7 })), "precondition_failed"));
    await client.deleteItem(pool, "d", { ifMatch: 1 });
    const gone = await rejection(client.getItem(pool, "d"));
    assert.ok(isProblem(gone, "not_found"));
    assert.match(gone.detail, /no item d in pool/);
    assert.ok(isProblem(await rejection(client.deleteItem(pool, "d")), "not_found"));
  });

  test("listItems pages with a cursor and filters by state and holder", async () => {
    const pool = `i${runId()}`;
    await client.addItems(pool, [{ id: "a" }, { id: "b", priority: 5 }, { id: "c" }, { id: "d" }]);
    const first = await client.listItems(pool, { limit: 2 });
    assert.deepEqual(
      first.items.map((i) => i.id),
      ["b", "a"],
    );
    assert.equal(typeof first.next_cursor, "string");
    const rest = await client.listItems(pool, { limit: 10, cursor: first.next_cursor ?? undefined });
    assert.deepEqual(
      rest.items.map((i) => i.id),
      ["c", "d"],
    );
    assert.equal(rest.next_cursor, null);

    const [lease] = await client.claimNext(pool, { holder: "h", leaseMs: 60_000 });
    assert.ok(lease);
    const leased = await client.listItems(pool, { state: "leased", holder: "h" });
    assert.deepEqual(
      leased.items.map((i) => i.id),
      ["b"],
    );
    assert.deepEqual((await client.listItems(pool, { state: "done" })).items, []);
    await lease.complete();
    assert.deepEqual(
      (await client.listItems(pool, { state: "done" })).items.map((i) => i.id),
      ["b"],
    );
    const bad = await rejection(client.listItems(pool, { limit: 0 }));
    assert.ok(isProblem(bad, "invalid_request"));
    assert.equal(typeof bad.field, "string");
  });

  test("names are sent as one path segment each: no route is reached through a name", async () => {
    const pool = `i${runId()}`;
    const slash = await rejection(client.addItems(pool, [{ id: "a/b" }]));
    assert.ok(isProblem(slash, "invalid_request"));
    const dots = await rejection(client.getPool(".."));
    assert.ok(dots instanceof LeaseholdError);
    assert.ok(dots.status === 400 || dots.status === 404, `status ${dots.status}`);
    const spaced = await rejection(client.getItem(pool, "has space"));
    assert.ok(isProblem(spaced, "invalid_request"));
  });
});

describe("leases (the lower-level calls and assignments)", () => {
  test("claimNext grants best first, with fencing tokens that only grow", async () => {
    const pool = `l${runId()}`;
    await client.addItems(pool, [
      { id: "low", priority: 1 },
      { id: "high", priority: 9, data: { k: "v" } },
      { id: "mid", priority: 5 },
    ]);
    const leases = await client.claimNext(pool, { holder: "alice", count: 2, leaseMs: 60_000 });
    assert.deepEqual(
      leases.map((l) => l.id),
      ["high", "mid"],
    );
    const [high, mid] = leases;
    assert.ok(high && mid);
    assert.equal(high.holder, "alice");
    assert.equal(high.pool, pool);
    assert.deepEqual(high.data, { k: "v" });
    assert.equal(high.version, 2);
    assert.equal(high.attempts, 1);
    assert.equal(high.priority, 9);
    assert.ok(high.expiresAt instanceof Date);
    assert.ok(mid.token > high.token);
    assert.deepEqual(JSON.parse(JSON.stringify(high)), high.info);
    assert.equal(high.info.lease_expires_at, high.expiresAt?.toISOString());

    const held = await client.listLeases(pool, "alice");
    assert.deepEqual(
      held.leases.map((l) => [l.id, l.token]),
      [
        ["high", high.token],
        ["mid", mid.token],
      ],
    );
    assert.equal(held.next_cursor, null);
    const paged = await client.listLeases(pool, "alice", { limit: 1 });
    assert.equal(paged.leases.length, 1);
    assert.equal(typeof paged.next_cursor, "string");
    const rest = await client.listLeases(pool, "alice", { limit: 1, cursor: paged.next_cursor ?? undefined });
    assert.deepEqual(
      rest.leases.map((l) => l.id),
      ["mid"],
    );

    // The lower-level calls, by holder and token.
    const renewed = await client.renew(pool, "high", { holder: "alice", token: high.token, leaseMs: 120_000 });
    assert.equal(renewed.token, high.token);
    assert.ok(renewed.version > 2);
    const released = await client.release(pool, "mid", { holder: "alice", token: mid.token, delayMs: 600_000 });
    assert.equal(released.state, "delayed");
    const done = await client.complete(pool, "high", { holder: "alice", token: high.token, data: { ok: 1 } });
    assert.equal(done.state, "done");
    assert.deepEqual(done.data, { ok: 1 });
    const twice = await rejection(client.complete(pool, "high", { holder: "alice", token: high.token }));
    assert.ok(isProblem(twice, "lease_lost"));
    high.stop();
    mid.stop();
  });

  test("claimItem: another holder is refused; the same holder gets the same lease again", async () => {
    const pool = `l${runId()}`;
    await client.addItems(pool, [{ id: "x" }]);
    const mine = await client.claimItem(pool, "x", { holder: "r1", leaseMs: 60_000 });
    const theirs = await rejection(client.claimItem(pool, "x", { holder: "r2" }));
    assert.ok(isProblem(theirs, "already_leased"));
    assert.deepEqual(theirs.current, { version: 2, state: "leased", holder: "r1" });
    const again = await client.claimItem(pool, "x", { holder: "r1", leaseMs: 60_000 });
    assert.equal(again.token, mine.token);
    assert.equal(again.version, 3);
    again.stop();
    await mine.complete();
    const done = await rejection(client.claimItem(pool, "x", { holder: "r2" }));
    assert.ok(isProblem(done, "invalid_state"));
    assert.equal(done.current?.state, "done");
    const missing = await rejection(client.claimItem(pool, "nope", { holder: "r2" }));
    assert.ok(isProblem(missing, "not_found"));
  });

  test("claimNext on a missing pool is 404, or empty with create; a paused pool grants nothing", async () => {
    const pool = `l${runId()}`;
    assert.ok(isProblem(await rejection(client.claimNext(pool, { holder: "w" })), "not_found"));
    assert.deepEqual(await client.claimNext(pool, { holder: "w", create: true }), []);
    await client.addItems(pool, [{ id: "a" }]);
    await client.putPool(pool, { paused: true });
    assert.deepEqual(await client.claimNext(pool, { holder: "w" }), []);
    assert.ok(isProblem(await rejection(client.claimItem(pool, "a", { holder: "w" })), "pool_paused"));
    await client.putPool(pool, { paused: false });
    const [lease] = await client.claimNext(pool, { holder: "w", leaseMs: 0 });
    assert.ok(lease);
    assert.equal(lease.expiresAt, null);
    assert.equal(lease.renewing, false, "a lease without expiry is not renewed");
    await lease.complete();
  });

  test("a long-poll claim waits for an item, past the client's own timeout", async () => {
    const pool = `l${runId()}`;
    await client.putPool(pool);
    const quick = new Client({ baseUrl: url, timeoutMs: 300, retries: 0 });
    const started = Date.now();
    const waiting = quick.claimNext(pool, { holder: "w", waitMs: 5_000, leaseMs: 60_000 });
    // The claim is on the server before the item comes: its first 300 ms are spent.
    await new Promise((done) => setTimeout(done, 600));
    await client.addItems(pool, [{ id: "late" }]);
    const [lease] = await waiting;
    assert.equal(lease?.id, "late");
    assert.ok(Date.now() - started >= 600);
    await lease?.complete();
  });

  test("assignItem gives an item to a holder (new token) and takes it back with null", async () => {
    const pool = `l${runId()}`;
    await client.addItems(pool, [{ id: "ev" }]);
    const a = await client.claimItem(pool, "ev", { holder: "user-a", leaseMs: 60_000 });
    const { item: seen, etag } = await client.getItem(pool, "ev");
    const toB = await client.assignItem(pool, "ev", "user-b", { expectedVersion: seen.version, leaseMs: 60_000 });
    assert.equal(toB.holder, "user-b");
    assert.ok((toB.token ?? 0) > a.token);
    const late = await rejection(client.assignItem(pool, "ev", "user-c", { expectedVersion: seen.version }));
    assert.ok(isProblem(late, "version_conflict"));
    assert.equal(late.current?.holder, "user-b");
    const stale = await rejection(client.assignItem(pool, "ev", "user-c", { ifMatch: etag }));
    assert.ok(isProblem(stale, "precondition_failed"));
    const lost = await rejection(a.complete());
    assert.ok(isProblem(lost, "lease_lost"));
    const back = await client.assignItem(pool, "ev", null);
    assert.equal(back.state, "available");
    assert.equal(back.holder, null);
  });

  test("requeueItem: done back to available, a delay snoozes, a leased item is refused", async () => {
    const pool = `l${runId()}`;
    await client.addItems(pool, [{ id: "a" }, { id: "b" }]);
    const [a] = await client.claimNext(pool, { holder: "w", leaseMs: 60_000 });
    assert.ok(a);
    const refused = await rejection(client.requeueItem(pool, "a"));
    assert.ok(isProblem(refused, "already_leased"));
    await a.complete();
    const back = await client.requeueItem(pool, "a", { priority: 7 });
    assert.equal(back.state, "available");
    assert.equal(back.attempts, 0);
    assert.equal(back.priority, 7);
    const snoozed = await client.requeueItem(pool, "b", { delayMs: 600_000 });
    assert.equal(snoozed.state, "delayed");
    const monday = await client.requeueItem(pool, "a", { availableAt: new Date(Date.now() + 3_600_000) });
    assert.equal(monday.state, "delayed");
  });

  test("max_leases_per_holder: holder_at_capacity carries the limit", async () => {
    const pool = `l${runId()}`;
    await client.putPool(pool, { maxLeasesPerHolder: 1 });
    await client.addItems(pool, [{ id: "a" }, { id: "b" }]);
    const [a] = await client.claimNext(pool, { holder: "w", leaseMs: 60_000 });
    const full = await rejection(client.claimNext(pool, { holder: "w" }));
    assert.ok(isProblem(full, "holder_at_capacity"));
    assert.equal(full.limit, 1);
    await a?.complete();
  });
});

describe("counters", () => {
  test("nextCounter draws contiguous values and formatted ids; getCounter reads the last", async () => {
    const name = `case-${runId()}`;
    const first = await client.nextCounter(name, { format: "CASE-{date}-{seq:05}" });
    assert.deepEqual(first.values, [1]);
    assert.match(first.period ?? "", /^\d{4}-\d{2}-\d{2}$/);
    assert.match(first.ids?.[0] ?? "", /^CASE-\d{8}-00001$/);
    const batch = await client.nextCounter(name, { count: 3 });
    assert.deepEqual(batch.values, [2, 3, 4]);
    assert.equal(batch.ids, undefined);
    assert.equal((await client.getCounter(name)).value, 4);
    assert.equal((await client.getCounter(name, { period: first.period ?? undefined, tz: "UTC" })).value, 4);
    assert.equal((await client.getCounter(name, { period: "2000-01-01" })).value, 0);

    const whole = await client.nextCounter(name, { period: "none", count: 2 });
    assert.equal(whole.period, null);
    assert.deepEqual(whole.values, [1, 2]);
    assert.equal((await client.getCounter(name, { period: "none" })).value, 2);
    const inTokyo = await client.nextCounter(`${name}-tz`, { tz: "Asia/Tokyo" });
    assert.deepEqual(inTokyo.values, [1]);

    assert.ok(isProblem(await rejection(client.nextCounter(name, { tz: "Mars/Olympus_Mons" })), "invalid_request"));
    assert.ok(isProblem(await rejection(client.nextCounter(name, { format: "CASE-{when}" })), "invalid_request"));
  });

  test("withIdempotencyKey: the same draw twice gives the same values; another request with the key is refused", async () => {
    const name = `case-${runId()}`;
    const key = `request-${runId()}`;
    const once = client.withIdempotencyKey(key);
    assert.equal(once.idempotencyKey, key);
    const first = await once.nextCounter(name, { format: "C-{seq}" });
    const again = await client.withIdempotencyKey(key).nextCounter(name, { format: "C-{seq}" });
    assert.deepEqual(again, first);
    assert.deepEqual((await client.nextCounter(name)).values, [2], "the replay drew nothing");
    const reused = await rejection(once.nextCounter(name, { count: 2 }));
    assert.ok(isProblem(reused, "idempotency_key_reused"));
    assert.throws(() => client.withIdempotencyKey("has space"), LeaseholdError);
    assert.throws(() => client.withIdempotencyKey(""), LeaseholdError);
  });
});

describe("events", () => {
  test("listEvents pages through the log from where the last page ended", async () => {
    const pool = `e${runId()}`;
    await client.addItems(pool, [{ id: "x" }]);
    const lease = await client.claimItem(pool, "x", { holder: "alice", leaseMs: 60_000 });
    await lease.complete();
    const first = await client.listEvents(pool, { limit: 2 });
    assert.equal(first.trimmed, false);
    assert.deepEqual(
      first.events.map((e: PoolEvent) => [e.type, e.item, e.holder, e.token]),
      [
        ["added", "x", null, null],
        ["claimed", "x", "alice", lease.token],
      ],
    );
    assert.match(first.events[0]?.id ?? "", /^\d+-\d+$/);
    const second = await client.listEvents(pool, { after: first.next_after ?? undefined });
    assert.deepEqual(
      second.events.map((e) => [e.type, e.state, e.version]),
      [["completed", "done", 3]],
    );
    const none = await client.listEvents(pool, { after: second.next_after ?? undefined });
    assert.deepEqual(none.events, []);
    assert.equal(none.next_after, second.next_after);
    const bad = await rejection(client.listEvents(pool, { after: "yesterday" }));
    assert.ok(isProblem(bad, "invalid_request"));
    assert.ok(isProblem(await rejection(client.listEvents(`none-${pool}`)), "not_found"));
  });
});

describe("errors", () => {
  test("a problem carries status, code, detail, field, request id; it is not an unknown outcome", async () => {
    const bad = await rejection(client.putPool(`bad name ${runId()}`));
    assert.ok(bad instanceof LeaseholdError);
    assert.ok(bad instanceof Error);
    assert.equal(bad.name, "LeaseholdError");
    assert.equal(bad.kind, "problem");
    assert.equal(bad.status, 400);
    assert.equal(bad.code, "invalid_request");
    assert.equal(typeof bad.field, "string");
    assert.ok(bad.detail.length > 0);
    assert.equal(typeof bad.requestId, "string");
    assert.equal(bad.outcomeUnknown, false);
    assert.equal(isOutcomeUnknown(bad), false);
    assert.equal(bad.attempts, 1);
    assert.match(bad.message, /^400 invalid_request/);
    assert.equal(bad.problem?.status, 400);
  });

  test("an unknown route is not_found, saying so", async () => {
    const raw = new Client({ baseUrl: `${url}/nowhere` });
    const route = await rejection(raw.tenant());
    assert.ok(isProblem(route, "not_found"));
    assert.match(route.detail, /no such route/);
  });

  test("PROBLEM_CODES lists every code the server declares", () => {
    assert.equal(new Set(PROBLEM_CODES).size, PROBLEM_CODES.length);
    for (const code of ["lease_lost", "version_conflict", "quota_exceeded", "durability_timeout", "internal"]) {
      assert.ok((PROBLEM_CODES as readonly string[]).includes(code), code);
    }
  });

  test("a base URL that is not http(s) is refused when the client is made", () => {
    assert.throws(() => new Client({ baseUrl: "ftp://example.invalid" }), LeaseholdError);
    assert.throws(() => new Client({ baseUrl: "not a url" }), LeaseholdError);
  });

  test("a header value fetch would refuse is `invalid` before anything is sent: not retried, not an unknown outcome", async () => {
    const retries: RetryInfo[] = [];
    const watched = new Client({ baseUrl: url, onRetry: (info) => retries.push(info) });
    const pool = `h${runId()}`;
    const refusals: [string, () => Promise<unknown>][] = [
      ["If-Match", () => watched.putItem(pool, "a", { n: 1 }, { ifMatch: '"1"\r\nX-Injected: 1' })],
      ["If-Match", () => watched.patchItem(pool, "a", { n: 1 }, { ifMatch: '"1"\n' })],
      ["If-Match", () => watched.deleteItem(pool, "a", { ifMatch: '"1"\0' })],
      ["If-Match", () => watched.assignItem(pool, "a", "bob", { ifMatch: '"1\u20ac"' })],
      ["If-None-Match", () => watched.putItem(pool, "a", { n: 1 }, { ifNoneMatch: "*\r" as "*" })],
      ["Lease-Token", () => watched.putItem(pool, "a", { n: 1 }, { leaseToken: "7\r\n" as unknown as number })],
      [
        "Last-Event-ID",
        async () => {
          for await (const event of watched.followEvents(pool, { after: "1-0\r\nX-Injected: 1" })) void event;
        },
      ],
    ];
    for (const [field, call] of refusals) {
      const error = await rejection(call());
      assert.ok(error instanceof LeaseholdError, `${field}: ${String(error)}`);
      assert.equal(error.kind, "invalid", `${field}: ${error.message}`);
      assert.equal(error.code, "invalid_request");
      assert.equal(error.field, field);
      assert.equal(error.attempts, 0);
      assert.equal(error.outcomeUnknown, false);
    }
    assert.deepEqual(retries, [], "nothing was retried");
    assert.equal(watched.retryCount, 0);
    // Nothing was sent: the writes would have made the pool.
    assert.ok(isProblem(await rejection(client.getPool(pool)), "not_found"));
    // A handle's key is checked when it is made.
    const key = (() => {
      try {
        watched.withIdempotencyKey("key\r\nX-Injected: 1");
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    assert.ok(key instanceof LeaseholdError && key.kind === "invalid" && key.field === "Idempotency-Key");
  });
});

describe("signals", () => {
  test("every call takes a signal: an aborted one sends nothing, and the call throws its reason", async () => {
    const pool = `s${runId()}`;
    await client.addItems(pool, [{ id: "held" }]);
    const lease = await client.claimItem(pool, "held", { holder: "alice", leaseMs: 60_000 });
    const reason = new Error("given up by the caller");
    const signal = AbortSignal.abort(reason);
    const other = `s${runId()}`;
    const ref = { holder: "alice", token: lease.token };
    const calls: [string, () => Promise<unknown>][] = [
      ["ready", () => client.ready({ signal })],
      ["putPool", () => client.putPool(other, { leaseMs: 1000 }, { signal })],
      ["getPool", () => client.getPool(pool, { signal })],
      ["listPools", () => client.listPools({ signal })],
      ["deletePool", () => client.deletePool(pool, { signal })],
      ["tenant", () => client.tenant({ signal })],
      ["addItems", () => client.addItems(other, [{ id: "x" }], { signal })],
      ["getItem", () => client.getItem(pool, "held", { signal })],
      ["putItem", () => client.putItem(other, "x", { n: 1 }, { signal })],
      ["patchItem", () => client.patchItem(pool, "held", { n: 1 }, { signal })],
      ["deleteItem", () => client.deleteItem(pool, "held", { signal })],
      ["listItems", () => client.listItems(pool, { signal })],
      ["assignItem", () => client.assignItem(pool, "held", "bob", { signal })],
      ["requeueItem", () => client.requeueItem(pool, "held", { signal })],
      ["listLeases", () => client.listLeases(pool, "alice", { signal })],
      ["claimNext", () => client.claimNext(pool, { holder: "bob", signal })],
      ["claimItem", () => client.claimItem(pool, "held", { holder: "alice", signal })],
      ["renew", () => client.renew(pool, "held", ref, { signal })],
      ["release", () => client.release(pool, "held", ref, { signal })],
      ["complete", () => client.complete(pool, "held", ref, { signal })],
      ["nextCounter", () => client.nextCounter(other, { signal })],
      ["getCounter", () => client.getCounter(other, { signal })],
      ["listEvents", () => client.listEvents(pool, { signal })],
      ["Lease.renew", () => lease.renew({ signal })],
    ];
    for (const [name, call] of calls) {
      assert.equal(await rejection(call()), reason, name);
    }
    // The guard's renewal was given up, not refused: the lease is still held.
    assert.equal(lease.state, "held");
    assert.equal(await rejection(lease.complete({ n: 1 }, { signal })), reason);
    assert.equal(lease.state, "completed", "the guard counts it as completed whatever the answer");
    // Nothing was sent: the item is as it was, the other pool and counter were never made.
    const { item } = await client.getItem(pool, "held");
    assert.equal(item.state, "leased");
    assert.equal(item.version, 2);
    assert.ok(isProblem(await rejection(client.getPool(other)), "not_found"));
    assert.equal((await client.getCounter(other)).value, 0);
    await client.release(pool, "held", ref);
  });
});
