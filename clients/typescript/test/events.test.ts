/**
 * followEvents against a real `leasehold dev` whose streams are cut every second
 * (`--stream-max-secs 1`): events produced across several cuts all arrive once, in order;
 * the stream ends when the pool is deleted; the `trimmed` marker is surfaced. And the SSE
 * parser on the cases the service seldom sends.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Client, LeaseholdError, type FollowedEvent, type PoolEvent } from "leasehold-client";

import { SseParser } from "../src/sse.js";
import { rejection, runId, startDev, waitFor, type Dev } from "./harness.js";

describe("followEvents", () => {
  let dev: Dev;
  let client: Client;
  before(async () => {
    dev = await startDev(["--stream-max-secs", "1"]);
    client = new Client({ baseUrl: dev.url });
  });
  after(() => dev.stop());

  test("resumes after each cut with Last-Event-ID: every event once, in order; ends when the pool is deleted", async () => {
    const pool = `f${runId()}`;
    await client.addItems(pool, [{ id: "item-000" }]);
    const seen: FollowedEvent[] = [];
    const stream = client.followEvents(pool);
    const following = (async () => {
      for await (const event of stream) seen.push(event);
    })();

    // Items added one at a time over about three and a half seconds: at least three cuts.
    const started = Date.now();
    let n = 1;
    while (Date.now() - started < 3_500) {
      await client.addItems(pool, [{ id: `item-${String(n).padStart(3, "0")}` }]);
      n += 1;
      await new Promise((done) => setTimeout(done, 50));
    }
    const expected = (await allEvents(client, pool)).map((e) => e.id);
    assert.equal(expected.length, n);
    await waitFor("every event to arrive", () => seen.length >= expected.length, { timeoutMs: 5_000 });

    await client.deletePool(pool);
    await following; // ends by itself: the reconnection is refused with 404

    const ids = seen.map((e) => (e.type === "trimmed" ? "trimmed" : e.id));
    assert.deepEqual(ids, expected, "each event once, in the log's order");
    assert.equal(stream.lastEventId, expected.at(-1));
    assert.ok(stream.connections >= 4, `${stream.connections} connections: the stream was not cut`);
    const items = seen.map((e) => (e as PoolEvent).item);
    assert.deepEqual(
      items,
      Array.from({ length: n }, (_, i) => `item-${String(i).padStart(3, "0")}`),
    );
  });

  test("goes on from `after`, and stops when its signal aborts", async () => {
    const pool = `f${runId()}`;
    await client.addItems(pool, [{ id: "a" }, { id: "b" }, { id: "c" }]);
    const [first] = (await client.listEvents(pool, { limit: 1 })).events;
    assert.ok(first);
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const event of client.followEvents(pool, { after: first.id, signal: controller.signal })) {
      if (event.type !== "trimmed") seen.push(event.item ?? "");
      if (seen.length === 2) controller.abort();
    }
    assert.deepEqual(seen, ["b", "c"]);

    // Breaking out of the loop ends it as well.
    let count = 0;
    for await (const event of client.followEvents(pool)) {
      assert.notEqual(event.type, "trimmed");
      count += 1;
      if (count === 1) break;
    }
    assert.equal(count, 1);
  });

  test("once its signal aborts nothing more is yielded, not even events already received, and it stays ended", async () => {
    const pool = `f${runId()}`;
    // Five events the stream sends together, as soon as it connects.
    await client.addItems(pool, ["a", "b", "c", "d", "e"].map((id) => ({ id })));
    const controller = new AbortController();
    const stream = client.followEvents(pool, { signal: controller.signal });
    const seen: string[] = [];
    for await (const event of stream) {
      seen.push((event as PoolEvent).item ?? "");
      controller.abort();
    }
    assert.deepEqual(seen, ["a"]);
    assert.equal(stream.lastEventId, (await client.listEvents(pool, { limit: 1 })).events[0]?.id);
    for await (const event of stream) assert.fail(`yielded ${JSON.stringify(event)} after the abort`);
  });

  test("a for await after a break goes on after the last event yielded: none lost or repeated", async () => {
    const pool = `f${runId()}`;
    await client.addItems(pool, ["a", "b", "c", "d", "e"].map((id) => ({ id })));
    const expected = (await allEvents(client, pool)).map((e) => e.id);
    const stream = client.followEvents(pool);
    const ids: string[] = [];
    for await (const event of stream) {
      ids.push((event as PoolEvent).id);
      if (ids.length === 2) break;
    }
    assert.equal(stream.lastEventId, expected[1]);
    for await (const event of stream) {
      ids.push((event as PoolEvent).id);
      if (ids.length === 5) break;
    }
    assert.deepEqual(ids, expected);
    assert.ok(stream.connections >= 2, `${stream.connections} connections`);
    // And a third loop gets what happens next.
    await client.addItems(pool, [{ id: "f" }]);
    for await (const event of stream) {
      assert.equal((event as PoolEvent).item, "f");
      assert.equal((event as PoolEvent).type, "added");
      break;
    }
  });

  test("a pool that does not exist is refused at once", async () => {
    const error = await rejection(
      (async () => {
        for await (const event of client.followEvents(`none-${runId()}`)) void event;
      })(),
    );
    assert.ok(error instanceof LeaseholdError);
    assert.equal(error.code, "not_found");
  });

  test("events the pool's cap dropped before they were sent show as a trimmed marker", async () => {
    const pool = `f${runId()}`;
    await client.putPool(pool, { maxEvents: 2 });
    await client.addItems(pool, [{ id: "first" }]);
    const [oldest] = (await client.listEvents(pool)).events;
    assert.ok(oldest);
    // Many more than the cap: the log keeps the last two.
    for (let i = 0; i < 10; i++) await client.addItems(pool, [{ id: `x${i}` }]);
    const kept = (await client.listEvents(pool)).events.map((e) => e.id);
    const controller = new AbortController();
    const seen: FollowedEvent[] = [];
    for await (const event of client.followEvents(pool, { after: oldest.id, signal: controller.signal })) {
      seen.push(event);
      if (seen.length === 1 + kept.length) controller.abort();
    }
    assert.deepEqual(seen[0], { type: "trimmed" });
    assert.deepEqual(
      seen.slice(1).map((e) => (e as PoolEvent).id),
      kept,
    );
  });
});

describe("the SSE parser", () => {
  test("comments, multi-line data, an event without id, and lines cut anywhere", () => {
    const text =
      "\uFEFF: a comment\r\n" +
      'id: 1-0\r\nevent: added\r\ndata: {"a":\r\ndata: 1}\r\n\r\n' +
      "event: trimmed\ndata: {}\n\n" +
      ":keep-alive\r\r" +
      "data:no space\rid: 2-0\r\r" +
      "id: 3-0\nevent: lonely\n\n" +
      "retry: 5\nunknown: x\ndata\n\n";
    const expected = [
      { event: "added", data: '{"a":\n1}', id: "1-0" },
      { event: "trimmed", data: "{}", id: undefined },
      { event: "message", data: "no space", id: "2-0" },
      { event: "message", data: "", id: undefined },
    ];
    // Whole, and cut at every place (a CR and its LF in different pieces too).
    assert.deepEqual(new SseParser().push(text), expected);
    for (let cut = 0; cut <= text.length; cut++) {
      const parser = new SseParser();
      const out = [...parser.push(text.slice(0, cut)), ...parser.push(text.slice(cut))];
      assert.deepEqual(out, expected, `cut at ${cut}`);
      // With an empty piece between (a chunk that decoded to nothing), the same.
      const again = new SseParser();
      const pieces = [text.slice(0, cut), "", text.slice(cut)];
      assert.deepEqual(
        pieces.flatMap((piece) => again.push(piece)),
        expected,
        `cut at ${cut}, an empty piece between`,
      );
    }
    // One character at a time.
    const parser = new SseParser();
    assert.deepEqual(
      [...text].flatMap((c) => parser.push(c)),
      expected,
    );
  });

  test("an empty piece between a CR and its LF does not make the LF a blank line", () => {
    const parser = new SseParser();
    const pieces = ["data: x\r", "", "\ndata: y\r", "", "", "\n", "\r", "", "\n"];
    assert.deepEqual(
      pieces.flatMap((piece) => parser.push(piece)),
      [{ event: "message", data: "x\ny", id: undefined }],
    );
  });

  test("nothing is dispatched before the blank line that ends an event", () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push("id: 1-0\nevent: added\ndata: {}\n"), []);
    assert.equal(parser.push("\n").length, 1);
  });
});

/** Every event of the pool's log, page after page. */
async function allEvents(client: Client, pool: string): Promise<PoolEvent[]> {
  const out: PoolEvent[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await client.listEvents(pool, { after, limit: 1000 });
    out.push(...page.events);
    if (page.events.length === 0) return out;
    after = page.next_after ?? undefined;
  }
}
