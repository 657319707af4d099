/**
 * The timer helper under every wait of the library (the guard's expiry watch, retry
 * waits, an attempt's timeout, an event stream's silence): `setTimeout` keeps at most
 * 2^31 − 1 ms and takes a longer delay as 1 ms, so longer waits are armed in steps. Pure
 * unit tests of the helper, on its own (no server).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { MAX_TIMER_MS, sleep, startTimer, timerStep } from "../src/util.js";

/** Resolves after `ms` by a plain timer: the bound of a check that nothing happens. */
function tick(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

describe("timers", () => {
  test("a step is what is left, at most what setTimeout keeps; nothing once it has passed", () => {
    assert.equal(MAX_TIMER_MS, 2_147_483_647);
    assert.equal(timerStep(250), 250);
    assert.equal(timerStep(MAX_TIMER_MS), MAX_TIMER_MS);
    assert.equal(timerStep(2_592_000_000), MAX_TIMER_MS);
    assert.equal(timerStep(Number.POSITIVE_INFINITY), MAX_TIMER_MS);
    assert.equal(timerStep(0), 0);
    assert.equal(timerStep(-5), 0);
    assert.equal(timerStep(Number.NaN), 0);
    assert.equal(timerStep(95, 20), 20);
    assert.equal(timerStep(15, 20), 15);
  });

  test("armed again step after step, it fires at its deadline, never before", async () => {
    const started = performance.now();
    let firedAt = 0;
    const fired = new Promise<void>((done) => {
      const timer = startTimer(
        120,
        () => {
          firedAt = performance.now();
          done();
        },
        { maxStepMs: 20 },
      );
      assert.ok(Math.abs(timer.deadline - (started + 120)) < 5, `deadline ${timer.deadline - started} ms ahead`);
    });
    await fired;
    // One step of 20 ms would have fired it 100 ms early.
    assert.ok(firedAt - started >= 120, `fired after ${firedAt - started} ms`);
  });

  test("cancelled between steps, it never fires", async () => {
    let fired = false;
    const timer = startTimer(60, () => (fired = true), { maxStepMs: 10 });
    await tick(25);
    timer.cancel();
    await tick(80);
    assert.equal(fired, false);
    assert.equal(timer.fired, false);
  });

  test("a 30-day timer does not fire at once, as a 30-day setTimeout does", async () => {
    let fired = false;
    const timer = startTimer(2_592_000_000, () => (fired = true), { keepAlive: false });
    assert.ok(timer.deadline - performance.now() > 2_591_999_000);
    await tick(30);
    assert.equal(fired, false);
    timer.cancel();
  });

  test("sleep: a 30-day wait does not end at once, and ends with the signal's reason when aborted", async () => {
    const controller = new AbortController();
    const reason = new Error("stop");
    let ended = false;
    const waiting = sleep(2_592_000_000, controller.signal).finally(() => (ended = true));
    await tick(30);
    assert.equal(ended, false);
    controller.abort(reason);
    await assert.rejects(waiting, (error) => error === reason);
  });

  test("0, or a time already past, fires on a later turn, not synchronously", async () => {
    let fired = false;
    const done = new Promise<void>((resolve) =>
      startTimer(-10, () => {
        fired = true;
        resolve();
      }),
    );
    assert.equal(fired, false);
    await done;
    assert.equal(fired, true);
  });
});
