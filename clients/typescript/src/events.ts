/**
 * {@link EventStream}: a pool's events followed live over Server-Sent Events, resumed by
 * itself after the last event it yielded whenever the connection ends or breaks.
 *
 * @module
 */

import { LeaseholdError } from "./errors.js";
import { retryDelay } from "./retry.js";
import { SseParser, type SseMessage } from "./sse.js";
import type { Transport } from "./transport.js";
import type { FollowedEvent, PoolEvent } from "./types.js";
import { linkedController, path, sleep, startTimer, type Timer } from "./util.js";

/** The longest a long-poll claim waits; a stream silent for its timeout plus this is broken. */
export const LONGEST_WAIT_MS = 30_000;

/**
 * The live events of a pool (see `Client.followEvents`): an `AsyncIterable` of
 * {@link FollowedEvent}s, to read with `for await`.
 *
 * - It connects when the iteration starts, and yields the events after `after` (from the
 *   oldest kept without it), then each new one as it happens.
 * - A connection that ends (the service's `--stream-max-secs`, a replica stopping) or
 *   breaks (reset, silent for longer than the client's `timeoutMs` plus 30 s) is opened
 *   again at once with `Last-Event-ID`: the id of the last event yielded. No event is lost
 *   or yielded twice. Opening is retried as any call is (no answer, 429, 502–504, with
 *   backoff and `Retry-After`); connections that keep ending without an event are opened
 *   again after the same backoff.
 * - Where the pool's cap dropped events before they could be sent, it yields
 *   `{ type: "trimmed" }`; what follows starts at the oldest event kept.
 * - It ends (the iteration finishes) when the pool is deleted (the next connection is
 *   refused with 404) or when the `signal` aborts: once it has aborted, nothing more is
 *   yielded, not even an event already received. Either way the stream stays ended.
 * - A loop that breaks out (or throws) closes the connection; a later `for await` on the
 *   same stream connects again and goes on after the last event yielded, so one stream
 *   can be read by several loops in turn without an event lost or repeated.
 * - It throws when the first connection of an iteration is refused (404 for a pool that
 *   does not exist, 401, …), when opening is given up on, when `after` is not a valid
 *   header value (`invalid`), or when an event cannot be read (of a newer server's kind).
 *   {@link EventStream.lastEventId} says where a new iteration goes on from (past the
 *   event that could not be read).
 */
export class EventStream implements AsyncIterable<FollowedEvent> {
  readonly #transport: Transport;
  readonly #pool: string;
  readonly #signal: AbortSignal | undefined;
  #last: string | undefined;
  #connections = 0;
  /** The iteration under way: one that has not finished, which a new loop goes on with. */
  #iterator: AsyncGenerator<FollowedEvent, void, undefined> | undefined;
  /** The pool was deleted, or the signal aborted: every iteration from now on is empty. */
  #ended = false;

  /** @internal Made by `Client.followEvents`. */
  constructor(transport: Transport, pool: string, after: string | undefined, signal: AbortSignal | undefined) {
    this.#transport = transport;
    this.#pool = pool;
    this.#last = after;
    this.#signal = signal;
  }

  /** The id of the last event yielded (or the `after` the stream started from). */
  get lastEventId(): string | undefined {
    return this.#last;
  }

  /** How many connections the stream has opened so far (1 + its reconnections). */
  get connections(): number {
    return this.#connections;
  }

  /**
   * The iteration: the one under way while it has not finished, else a new one that goes
   * on after the last event yielded (after `break`, say).
   */
  [Symbol.asyncIterator](): AsyncGenerator<FollowedEvent, void, undefined> {
    if (this.#iterator === undefined) {
      const iterator = this.#run(() => finished());
      const finished = (): void => {
        if (this.#iterator === iterator) this.#iterator = undefined;
      };
      // Finished however it finishes: by itself (its body's `finally`), or by `return()`
      // or `throw()`, which finish it without running its body when it has not begun.
      const stop = iterator.return.bind(iterator);
      const fail = iterator.throw.bind(iterator);
      iterator.return = (value) => {
        finished();
        return stop(value);
      };
      iterator.throw = (error) => {
        finished();
        return fail(error);
      };
      this.#iterator = iterator;
    }
    return this.#iterator;
  }

  /** One iteration, until the stream ends, the loop leaves it, or it throws. */
  async *#run(finished: () => void): AsyncGenerator<FollowedEvent, void, undefined> {
    try {
      yield* this.#connect();
    } finally {
      finished();
    }
  }

  /** Connection after connection, from the last event yielded. */
  async *#connect(): AsyncGenerator<FollowedEvent, void, undefined> {
    const signal = this.#signal;
    const policy = this.#transport.policy;
    // A connection has been opened: a 404 from now on means the pool has gone.
    let opened = false;
    // Connections in a row that ended without yielding anything.
    let idleEnds = 0;
    while (!this.#ended) {
      if (signal?.aborted) {
        this.#ended = true;
        return;
      }
      if (idleEnds > 1) {
        try {
          await sleep(retryDelay(policy, idleEnds - 2), signal);
        } catch {
          continue; // aborted: ends above
        }
      }
      // One connection, ended by `connection.abort()` whatever way it ends.
      const { controller: connection, unlink } = linkedController(signal);
      try {
        let response: Response;
        try {
          const headers: Record<string, string> = { Accept: "text/event-stream" };
          // An empty id counts as none, for the service too.
          if (this.#last !== undefined && this.#last !== "") headers["Last-Event-ID"] = this.#last;
          response = await this.#transport.open({
            method: "GET",
            path: path(["v1", "pools", this.#pool, "events", "stream"]),
            headers,
            signal: connection.signal,
          });
        } catch (error) {
          if (signal?.aborted) continue; // ends above
          if (opened && error instanceof LeaseholdError && error.kind === "problem" && error.code === "not_found") {
            this.#ended = true;
            return; // the pool was deleted
          }
          throw error;
        }
        opened = true;
        this.#connections += 1;
        for await (const message of this.#messages(response, connection)) {
          const next = this.#read(message);
          // Aborted while this connection's text was being read: nothing more is yielded
          // (and the stream does not count this event as seen).
          if (signal?.aborted) break;
          if (next.type !== "trimmed") this.#last = next.id;
          idleEnds = 0;
          yield next;
          if (signal?.aborted) break;
        }
        // Ended or broke: open again, after the last event yielded.
        idleEnds += 1;
      } finally {
        connection.abort();
        unlink();
      }
    }
  }

  /**
   * The events of one connection, until it ends, breaks or stays silent for too long
   * (each ends the iteration quietly: the caller opens another).
   */
  async *#messages(response: Response, connection: AbortController): AsyncGenerator<SseMessage, void, undefined> {
    const body = response.body;
    if (body === null) return;
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    const silenceMs = this.#transport.timeoutMs + LONGEST_WAIT_MS;
    try {
      for (;;) {
        let timer: Timer | undefined;
        const silent = new Promise<"silent">((resolve) => {
          timer = startTimer(silenceMs, () => resolve("silent"));
        });
        let chunk: ReadableStreamReadResult<Uint8Array> | "silent";
        try {
          chunk = await Promise.race([reader.read(), silent]);
        } catch {
          return; // broke (reset, aborted)
        } finally {
          timer?.cancel();
        }
        if (chunk === "silent" || chunk.done) return;
        for (const message of parser.push(decoder.decode(chunk.value, { stream: true }))) {
          if (connection.signal.aborted) return;
          yield message;
        }
      }
    } finally {
      connection.abort();
      reader.cancel().catch(() => undefined);
    }
  }

  /**
   * One SSE message as what it tells. One that cannot be read throws, and the stream goes
   * past it (a new iteration starts after it).
   */
  #read(message: SseMessage): FollowedEvent {
    if (message.event === "trimmed") return { type: "trimmed" };
    let event: PoolEvent | undefined;
    try {
      const parsed: unknown = JSON.parse(message.data);
      if (typeof parsed === "object" && parsed !== null && typeof (parsed as PoolEvent).id === "string") {
        event = parsed as PoolEvent;
      }
    } catch {
      // Handled below.
    }
    if (event === undefined) {
      if (message.id !== undefined && message.id !== "") this.#last = message.id;
      throw new LeaseholdError({
        kind: "unexpected",
        status: 200,
        detail: `event ${message.id ?? "(no id)"}: not an event: ${message.data.slice(0, 200)}`,
        message: `unexpected event ${message.id ?? "(no id)"} of type ${message.event}`,
      });
    }
    return event;
  }
}
