/**
 * The lease guard against a real `leasehold dev`: renewal keeps a short lease alive, a
 * stopped guard loses its lease at expiry, a refused renewal and renewals that cannot get
 * through both mark it lost, `await using` releases, completing stops renewal.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client, LeaseholdError, type Lease } from "leasehold-client";

import { aborted, rejection, runId, startDev, waitFor, type Dev } from "./harness.js";

let dev: Dev;
let client: Client;

before(async () => {
  dev = await startDev();
  client = new Client({ baseUrl: dev.url });
});
after(() => dev.stop());

/** How many `renewed` events the pool's log has for `id`. */
async function renewals(pool: string, id: string): Promise<number> {
  const page = await client.listEvents(pool, { limit: 1000 });
  return page.events.filter((e) => e.type === "renewed" && e.item === id).length;
}

async function claimOne(pool: string, holder: string, leaseMs: number, from = client): Promise<Lease> {
  const [lease] = await from.claimNext(pool, { holder, leaseMs });
  assert.ok(lease, `${holder} was granted nothing`);
  return lease;
}

test("renewal at a third of the lease time keeps a 1500 ms lease alive well past its time", async () => {
  const pool = `g${runId()}`;
  await client.addItems(pool, [{ id: "a" }]);
  const started = Date.now();
  const lease = await claimOne(pool, "alice", 1500);
  assert.equal(lease.renewing, true);
  // Two and a half lease times: without renewal it would have expired twice over.
  await waitFor("five renewals", async () => Date.now() - started > 3750 && (await renewals(pool, "a")) >= 5, {
    timeoutMs: 10_000,
    intervalMs: 100,
  });
  const { item } = await client.getItem(pool, "a");
  assert.equal(item.state, "leased");
  assert.equal(item.holder, "alice");
  assert.ok(Date.parse(item.lease_expires_at ?? "") > Date.now(), "the lease runs on");
  assert.equal(lease.lost.aborted, false);
  assert.ok(lease.version > 2, "the guard follows the renewals' versions");
  assert.ok((lease.expiresAt?.getTime() ?? 0) > started + 3000);
  assert.deepEqual(await client.claimNext(pool, { holder: "bob" }), [], "nothing to take over");
  const done = await lease.complete();
  assert.equal(done.state, "done");
  assert.equal(lease.state, "completed");
});

test("a stopped guard lets the lease expire: lost fires, and another holder's claim takes the item", async () => {
  const pool = `g${runId()}`;
  await client.addItems(pool, [{ id: "a" }]);
  const sent = Date.now();
  const lease = await claimOne(pool, "alice", 1500);
  lease.stop();
  assert.equal(lease.renewing, false);
  const reason = await aborted(lease.lost, 5_000, "lost");
  const lostAfter = Date.now() - sent;
  assert.ok(reason instanceof LeaseholdError);
  assert.equal(reason.kind, "lease_expired");
  assert.equal(reason.code, "lease_lost");
  assert.ok(lostAfter >= 1400 && lostAfter < 3000, `lost after ${lostAfter} ms`);
  assert.equal(lease.state, "lost");

  // The service expires it by its own clock: a waiting claim is granted it then.
  const [bobs] = await client.claimNext(pool, { holder: "bob", waitMs: 5_000, leaseMs: 60_000 });
  assert.equal(bobs?.id, "a");
  assert.ok((bobs?.token ?? 0) > lease.token, "the next grant has a higher token");
  const renew = await rejection(lease.renew());
  assert.ok(renew instanceof LeaseholdError && renew.code === "lease_lost");
  const late = await rejection(lease.complete());
  assert.ok(late instanceof LeaseholdError && late.code === "lease_lost");
  assert.equal(late.current?.holder, "bob");
  await bobs?.complete();
});

test("a renewal refused with lease_lost (the item was reassigned) marks the lease lost", async () => {
  const pool = `g${runId()}`;
  await client.addItems(pool, [{ id: "a" }]);
  const lease = await claimOne(pool, "alice", 1500);
  const taken = await client.assignItem(pool, "a", "bob", { leaseMs: 60_000 });
  assert.equal(taken.holder, "bob");
  const reason = await aborted(lease.lost, 3_000, "lost");
  assert.ok(reason instanceof LeaseholdError);
  assert.equal(reason.kind, "problem");
  assert.equal(reason.code, "lease_lost");
  assert.equal(reason.status, 409);
  assert.equal(lease.renewing, false);
  // Still bob's: the guard never took it back.
  assert.equal((await client.getItem(pool, "a")).item.holder, "bob");
});

test("renewals that get no answer are retried until the lease's time is up, then it is lost", async () => {
  const pool = `g${runId()}`;
  await client.addItems(pool, [{ id: "a" }]);
  const quick = new Client({ baseUrl: dev.url, timeoutMs: 200 });
  const sent = Date.now();
  const lease = await claimOne(pool, "alice", 1500, quick);
  dev.pause();
  let lostAfter: number;
  let reason: unknown;
  try {
    reason = await aborted(lease.lost, 5_000, "lost");
    lostAfter = Date.now() - sent;
  } finally {
    dev.resume();
  }
  assert.ok(reason instanceof LeaseholdError);
  assert.equal(reason.kind, "lease_expired");
  // Lost when the lease's time ran out by the holder's clock, not at the first failure.
  assert.ok(lostAfter >= 1400 && lostAfter < 2500, `lost after ${lostAfter} ms`);
  assert.ok(quick.retryCount >= 2, `only ${quick.retryCount} retries`);

  const [bobs] = await client.claimNext(pool, { holder: "bob", waitMs: 5_000, leaseMs: 60_000 });
  assert.equal(bobs?.id, "a");
  const late = await rejection(lease.complete());
  assert.ok(late instanceof LeaseholdError && late.code === "lease_lost");
  await bobs?.complete();
});

test("a long-poll claim granted after its lease time has passed is renewed at once, not lost", async () => {
  const pool = `g${runId()}`;
  await client.putPool(pool);
  const waiting = client.claimNext(pool, { holder: "alice", waitMs: 5_000, leaseMs: 900 });
  // Granted later than its lease time after it was sent: the guard cannot count the
  // lease's time from the claim, and the first renewal decides.
  await new Promise((done) => setTimeout(done, 1_000));
  await client.addItems(pool, [{ id: "late" }]);
  const [lease] = await waiting;
  assert.equal(lease?.id, "late");
  await waitFor("a renewal", async () => (await renewals(pool, "late")) >= 1, { timeoutMs: 2_000 });
  assert.equal(lease?.lost.aborted, false);
  assert.equal((await client.getItem(pool, "late")).item.holder, "alice");
  await lease?.complete();
});

test("await using releases a lease that was not completed, also when the block throws", async () => {
  const pool = `g${runId()}`;
  await client.addItems(pool, [{ id: "a" }, { id: "b" }, { id: "c" }]);
  {
    await using lease = await claimOne(pool, "alice", 60_000);
    assert.equal(lease.id, "a");
    assert.equal((await client.getItem(pool, "a")).item.state, "leased");
  }
  const released = (await client.getItem(pool, "a")).item;
  assert.equal(released.state, "available");
  assert.equal(released.holder, null);

  await assert.rejects(async () => {
    await using lease = await client.claimItem(pool, "b", { holder: "alice", leaseMs: 60_000 });
    assert.equal(lease.state, "held");
    throw new Error("the work failed");
  }, /the work failed/);
  assert.equal((await client.getItem(pool, "b")).item.state, "available");

  {
    await using lease = await client.claimItem(pool, "c", { holder: "alice", leaseMs: 60_000 });
    await lease.complete({ ok: true });
  }
  assert.equal((await client.getItem(pool, "c")).item.state, "done", "a completed lease is not released");
});

test("completing stops renewal: no renewal after it, and lost never fires", async () => {
  const pool = `g${runId()}`;
  await client.addItems(pool, [{ id: "a" }]);
  const lease = await claimOne(pool, "alice", 1500);
  await waitFor("a first renewal", async () => (await renewals(pool, "a")) >= 1, { timeoutMs: 3_000 });
  await lease.complete();
  assert.equal(lease.renewing, false);
  const before = await renewals(pool, "a");
  // Two renewal periods with nothing to wait for: a guard still renewing would have
  // been refused (the item is done) and fired `lost`.
  await new Promise((done) => setTimeout(done, 1_100));
  assert.equal(await renewals(pool, "a"), before);
  assert.equal(lease.lost.aborted, false);
  const again = await rejection(lease.complete());
  assert.ok(again instanceof LeaseholdError && again.kind === "invalid", "a guard is used once");
  const release = await rejection(lease.release());
  assert.ok(release instanceof LeaseholdError && release.kind === "invalid");
});

test("renew() renews now with a new lease time, keeping the token", async () => {
  const pool = `g${runId()}`;
  await client.addItems(pool, [{ id: "a" }]);
  const lease = await claimOne(pool, "alice", 60_000);
  const info = await lease.renew({ leaseMs: 600_000 });
  assert.equal(info.token, lease.token);
  assert.equal(lease.version, info.version);
  assert.ok((lease.expiresAt?.getTime() ?? 0) > Date.now() + 500_000);
  const adopted = client.adopt(pool, (await client.listLeases(pool, "alice")).leases[0]!, { leaseMs: 60_000 });
  assert.equal(adopted.token, lease.token);
  await waitFor("the adopted lease's first renewal", async () => (await renewals(pool, "a")) >= 2, {
    timeoutMs: 2_000,
  });
  adopted.stop();
  await lease.release({ delayMs: 600_000 });
  assert.equal((await client.getItem(pool, "a")).item.state, "delayed");
});

test("a stopped 30-day lease is watched to its end, not lost at once (longer than one setTimeout can wait)", async () => {
  const pool = `g${runId()}`;
  await client.addItems(pool, [{ id: "a" }]);
  const thirtyDays = 2_592_000_000;
  const lease = await claimOne(pool, "alice", thirtyDays);
  assert.ok((lease.expiresAt?.getTime() ?? 0) > Date.now() + thirtyDays - 60_000);
  lease.stop();
  assert.equal(lease.renewing, false);
  // The watch counts from when the claim was sent: 30 days, less the claim's round trip.
  const left = lease.remainingMs ?? 0;
  assert.ok(left > thirtyDays - 10_000 && left <= thirtyDays, `${left} ms left`);
  // A setTimeout of more than 2^31 - 1 ms fires after 1 ms: a watch armed that way would
  // have fired long before this 50 ms timer does.
  await new Promise((done) => setTimeout(done, 50));
  assert.equal(lease.lost.aborted, false);
  assert.equal(lease.state, "held");
  assert.equal((await client.getItem(pool, "a")).item.holder, "alice");
  await lease.release();
  assert.equal(lease.remainingMs, undefined);
});

test("renewing a lease without expiry keeps it without expiry (claimed with leaseMs 0, or granted so by the pool)", async () => {
  const pool = `g${runId()}`;
  await client.addItems(pool, [{ id: "a" }, { id: "b" }]);
  const lease = await client.claimItem(pool, "a", { holder: "alice", leaseMs: 0 });
  assert.equal(lease.expiresAt, null);
  assert.equal(lease.renewing, false);
  assert.equal(lease.remainingMs, undefined);
  const info = await lease.renew();
  assert.equal(info.lease_expires_at, null);
  assert.equal(lease.expiresAt, null);
  assert.equal((await client.getItem(pool, "a")).item.lease_expires_at, null, "the pool's 30 s were not applied");

  // Granted without expiry by the pool's own setting, then adopted after the pool's
  // lease time changed: renewed without expiry still.
  await client.putPool(pool, { leaseMs: 0 });
  const byPool = await client.claimItem(pool, "b", { holder: "alice" });
  assert.equal(byPool.expiresAt, null);
  await client.putPool(pool, { leaseMs: 60_000 });
  const [adoptedInfo] = (await client.listLeases(pool, "alice")).leases.filter((l) => l.id === "b");
  assert.ok(adoptedInfo);
  const adopted = client.adopt(pool, adoptedInfo);
  assert.equal((await adopted.renew()).lease_expires_at, null);
  assert.equal((await client.getItem(pool, "b")).item.lease_expires_at, null);

  // Naming a lease time gives it one, and the guard renews it from then on.
  const timed = await lease.renew({ leaseMs: 60_000 });
  assert.ok(Date.parse(timed.lease_expires_at ?? "") > Date.now() + 50_000);
  assert.equal(lease.renewing, true);
  await lease.complete();
  await adopted.complete();
});
