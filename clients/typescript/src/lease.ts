/**
 * {@link Lease}: a granted lease that keeps itself alive while its holder works.
 *
 * Like a lock watchdog, the guard renews the lease at a third of its time, so two renewals
 * can fail before it runs out. It stops, and its `lost` signal fires, as soon as the lease
 * is no longer the holder's: the service refused a renewal (the item was reassigned,
 * requeued, deleted, or had expired), or no renewal succeeded before the lease time ran
 * out (by the contract, a lease is lost the instant its time has passed). The holder's
 * clock decides the second case, counted from when the claim or renewal was *sent*, so it
 * errs on the early side. Where that count cannot be made (a lease adopted after a
 * restart, or replayed from an earlier call under the same Idempotency-Key), or has run
 * out before the guard began (a long-poll claim granted late in its wait), the guard renews
 * at once and that one answer decides (tried again, through answers that ask to come back
 * later, for up to a third of the lease time).
 *
 * A renewal answered with 429 or 502–504 (come back later), or not answered at all, is
 * never taken for a refusal, whatever the client's retry policy: the guard tries again,
 * no sooner than a `Retry-After` asks when that still ends within the lease's time, until
 * the lease's time is up.
 *
 * (The reference to the `esnext.disposable` library below is for `Symbol.asyncDispose` in
 * this module's declarations: a program whose `lib` leaves it out still compiles.)
 *
 * @module
 */

/// <reference lib="esnext.disposable" preserve="true" />

import { LeaseholdError } from "./errors.js";
import type { RetryPolicy } from "./retry.js";
import { decode, type Transport } from "./transport.js";
import type { CallOptions, Item, JsonObject, LeaseInfo, LeaseRef, ReleaseOptions } from "./types.js";
import { defined, now, path, sleep, startTimer, type Timer } from "./util.js";

/** Where a lease stands, as its guard knows it. */
export type LeaseState = "held" | "lost" | "completed" | "released";

/** Options of a call a lease guard makes (retry policy, signal, key). */
interface SendOptions {
  policy?: RetryPolicy;
  signal?: AbortSignal;
  idempotencyKey?: string;
}

function itemPath(pool: string, id: string, action: string): string {
  return path(["v1", "pools", pool, "items", id, action]);
}

/** `POST .../items/{id}/renew`. */
export async function renewCall<D>(
  transport: Transport,
  pool: string,
  id: string,
  ref: LeaseRef & { leaseMs?: number | undefined },
  options: SendOptions = {},
): Promise<LeaseInfo<D>> {
  const answer = await transport.send({
    method: "POST",
    path: itemPath(pool, id, "renew"),
    body: defined({ holder: ref.holder, token: ref.token, lease_ms: ref.leaseMs }),
    ...options,
  });
  return decode<LeaseInfo<D>>(answer);
}

/** `POST .../items/{id}/release`. */
export async function releaseCall<D>(
  transport: Transport,
  pool: string,
  id: string,
  ref: LeaseRef & ReleaseOptions,
  options: SendOptions = {},
): Promise<Item<D>> {
  const answer = await transport.send({
    method: "POST",
    path: itemPath(pool, id, "release"),
    body: defined({ holder: ref.holder, token: ref.token, delay_ms: ref.delayMs, priority: ref.priority }),
    ...options,
  });
  return decode<Item<D>>(answer);
}

/** `POST .../items/{id}/complete`. */
export async function completeCall<D>(
  transport: Transport,
  pool: string,
  id: string,
  ref: LeaseRef & { data?: object | undefined },
  options: SendOptions = {},
): Promise<Item<D>> {
  const answer = await transport.send({
    method: "POST",
    path: itemPath(pool, id, "complete"),
    body: defined({ holder: ref.holder, token: ref.token, data: ref.data }),
    ...options,
  });
  return decode<Item<D>>(answer);
}

/** A lease period by the holder's (monotonic) clock: when it began, when it ends. */
interface Period {
  began: number;
  ends: number;
}

/** The least time the one renewal that decides a lease of unknown age gets. */
const MIN_DECIDING_MS = 100;

/**
 * The key of `await using`'s disposal. Every runtime this package supports has
 * `Symbol.asyncDispose` or can be given it; without it, the method is still there under
 * the registered symbol a polyfill would use.
 */
const asyncDispose: typeof Symbol.asyncDispose =
  (Symbol as { asyncDispose?: typeof Symbol.asyncDispose }).asyncDispose ??
  (Symbol.for("Symbol.asyncDispose") as typeof Symbol.asyncDispose);

/**
 * A lease on one item, renewed in the background at a third of its time until it is
 * completed, released, disposed of, stopped or lost. Made by `Client.claimNext`,
 * `Client.claimItem` and `Client.adopt`.
 *
 * ```ts
 * for (const lease of await client.claimNext("cases", { holder: "alice", leaseMs: 30_000 })) {
 *   await using held = lease; // released if the work throws
 *   await work(lease.data, { signal: lease.lost });
 *   await lease.complete({ outcome: "resolved" });
 * }
 * ```
 *
 * A lease without expiry (`leaseMs: 0`) is never renewed by the guard (and `renew()`
 * keeps it without expiry). The guard's timers do not keep a program alive by themselves
 * (where the runtime can say so), and wait as long as a lease lasts (up to 30 days, longer
 * than one `setTimeout` can).
 */
export class Lease<D = JsonObject> {
  /** The pool. */
  readonly pool: string;
  /** The item's id. */
  readonly id: string;
  /** Who holds the lease. */
  readonly holder: string;
  /**
   * The fencing token: pass it to downstream systems, which refuse a token lower than
   * one they have seen. Renewals keep it.
   */
  readonly token: number;
  /** The item's data when the lease was granted. */
  readonly data: D;
  /**
   * Fires when the lease is lost, its `reason` a {@link LeaseholdError}: the refusal of a
   * renewal (`lease_lost`, or `not_found` for a deleted item, …), or one of kind
   * `lease_expired` when no renewal succeeded before the lease's time ran out. Pass it to
   * the work, which should stop: the item may be someone else's now. Never fires once
   * the lease is completed or released.
   */
  readonly lost: AbortSignal;

  readonly #transport: Transport;
  #info: LeaseInfo<D>;
  /**
   * The lease time the claim (or a renewal) named: undefined for the pool's, 0 for no
   * expiry.
   */
  #leaseMs: number | undefined;
  /** The current period; null when not known (renew at once); undefined: no expiry. */
  #period: Period | null | undefined;
  readonly #lost = new AbortController();
  /** The renewing loop's controller, while it runs. */
  #running: AbortController | undefined;
  /** After `stop()`: fires `lost` when the lease's time runs out. */
  #expiryTimer: Timer | undefined;
  #settled: "completed" | "released" | undefined;
  /** `stop()` was called: renew only when asked. */
  #stopped = false;

  /**
   * @internal Made by the client. `leaseMs` is what the claim asked for; `grantedAfter`
   * when the call that granted it was first sent (the monotonic clock), or undefined for
   * a lease of unknown age, which is renewed at once. The guard's own calls carry fresh
   * Idempotency-Keys, whatever key the claim was made with.
   */
  constructor(
    transport: Transport,
    pool: string,
    info: LeaseInfo<D>,
    leaseMs: number | undefined,
    grantedAfter: number | undefined,
  ) {
    this.#transport = transport;
    this.pool = pool;
    this.id = info.id;
    this.holder = info.holder;
    this.token = info.token;
    this.data = info.data;
    this.lost = this.#lost.signal;
    this.#info = info;
    this.#leaseMs = leaseMs;
    if (grantedAfter !== undefined) {
      const ends = localExpiry(info, leaseMs, grantedAfter);
      this.#period = ends === undefined ? undefined : { began: grantedAfter, ends };
    } else {
      this.#period = info.lease_expires_at === null ? undefined : null;
    }
    if (this.#period !== undefined) this.#start(false);
  }

  /** The item's version as last granted or renewed. */
  get version(): number {
    return this.#info.version;
  }

  /** When the lease ends, as last granted or renewed (by Redis's clock); null: never. */
  get expiresAt(): Date | null {
    const at = this.#info.lease_expires_at;
    return at === null ? null : new Date(at);
  }

  get priority(): number {
    return this.#info.priority;
  }

  get attempts(): number {
    return this.#info.attempts;
  }

  /** The lease as the API last wrote it (granted or renewed). */
  get info(): LeaseInfo<D> {
    return { ...this.#info };
  }

  /** Where the lease stands: held, lost, or completed / released through this guard. */
  get state(): LeaseState {
    return this.#settled ?? (this.#lost.signal.aborted ? "lost" : "held");
  }

  /** Completed or released through this guard (whatever the answer): it cannot be used again. */
  get settled(): boolean {
    return this.#settled !== undefined;
  }

  /**
   * How long the lease has left by the holder's clock, in ms (0 or less: run out), counted
   * from when the claim or the last renewal was sent; for a lease of unknown age (adopted,
   * or replayed), by its `expiresAt` and the wall clock. After `stop()`, `lost` fires when
   * this reaches 0. Undefined for a lease without expiry, and once the lease is completed,
   * released or lost.
   */
  get remainingMs(): number | undefined {
    if (this.#settled !== undefined || this.#lost.signal.aborted) return undefined;
    return this.#left();
  }

  /** Whether the guard is renewing the lease in the background. */
  get renewing(): boolean {
    return this.#running !== undefined;
  }

  /** The lease as the API writes it (what `JSON.stringify` shows). */
  toJSON(): LeaseInfo<D> {
    return this.info;
  }

  /**
   * Renews the lease now (for `leaseMs`, or the lease time it was claimed with: a lease
   * without expiry stays without), keeping its token. The guard's next renewal counts from
   * this one, and uses this `leaseMs` (0: no expiry, and no more renewals). A refusal marks
   * the lease lost. `signal` gives up the call (see {@link CallOptions}).
   */
  async renew(options: { leaseMs?: number } & CallOptions = {}): Promise<LeaseInfo<D>> {
    this.#usable("renew");
    if (options.leaseMs !== undefined) this.#leaseMs = options.leaseMs;
    const sentAt = now();
    let info: LeaseInfo<D>;
    try {
      info = await renewCall<D>(
        this.#transport,
        this.pool,
        this.id,
        this.#ref({ leaseMs: this.#renewalLeaseMs() }),
        signalOnly(options),
      );
    } catch (error) {
      if (isRefusal(error)) this.#lose(error);
      throw error;
    }
    if (this.#settled !== undefined || this.#lost.signal.aborted) return info;
    this.#info = info;
    const ends = localExpiry(info, this.#leaseMs, sentAt);
    this.#period = ends === undefined ? undefined : { began: sentAt, ends };
    // The guard goes on from this renewal: renewing (unless stopped), or watching the
    // new expiry (if stopped).
    this.#running?.abort();
    this.#running = undefined;
    if (this.#stopped) this.#watchExpiry();
    else if (this.#period !== undefined) this.#start(true);
    return info;
  }

  /**
   * Gives the item back (available at once, or after `delayMs`, with a new `priority`)
   * and stops renewing. `signal` gives up the call (see {@link CallOptions}); the guard
   * counts as released all the same.
   */
  async release(options: ReleaseOptions & CallOptions = {}): Promise<Item<D>> {
    this.#usable("release");
    this.#settle("released");
    const { delayMs, priority } = options;
    return releaseCall<D>(this.#transport, this.pool, this.id, this.#ref({ delayMs, priority }), signalOnly(options));
  }

  /**
   * Marks the item done (its data replaced by `data`, if given) and stops renewing.
   * After this, whatever its answer, the guard releases nothing. `signal` gives up the
   * call (see {@link CallOptions}); the guard counts as completed all the same.
   */
  async complete(data?: object, options: CallOptions = {}): Promise<Item<D>> {
    this.#usable("complete");
    this.#settle("completed");
    return completeCall<D>(this.#transport, this.pool, this.id, this.#ref({ data }), signalOnly(options));
  }

  /**
   * Stops renewing, without giving the item back: the lease runs out at its time (and
   * `lost` fires then, by the holder's clock) unless it is renewed, completed or
   * released first.
   */
  stop(): void {
    this.#stopped = true;
    this.#running?.abort();
    this.#running = undefined;
    if (this.#settled === undefined && !this.#lost.signal.aborted) this.#watchExpiry();
  }

  /**
   * For `await using`: releases the item if the lease was neither completed nor released
   * (nor lost), so an early return or a throw gives it back at once instead of at expiry.
   * Best effort: a failure to release is not thrown (the lease then runs out by itself).
   */
  async [asyncDispose](): Promise<void> {
    if (this.#settled !== undefined) return;
    const lost = this.#lost.signal.aborted;
    this.#settle("released");
    if (lost) return;
    try {
      await releaseCall(this.#transport, this.pool, this.id, this.#ref({}));
    } catch {
      // The lease runs out by itself.
    }
  }

  #ref<T extends object>(extra: T): LeaseRef & T {
    return { holder: this.holder, token: this.token, ...extra };
  }

  /**
   * The `lease_ms` a renewal sends: the one the claim or a renewal named (0 included: no
   * expiry); else none (the pool's), except for a lease without expiry, which stays so.
   */
  #renewalLeaseMs(): number | undefined {
    if (this.#leaseMs !== undefined) return this.#leaseMs;
    return this.#info.lease_expires_at === null ? 0 : undefined;
  }

  /** What is left of the lease by the guard's count; undefined: no expiry. */
  #left(): number | undefined {
    const period = this.#period;
    if (period === undefined) return undefined;
    if (period === null) {
      const at = this.#info.lease_expires_at;
      if (at === null) return undefined;
      const left = Date.parse(at) - Date.now();
      return Number.isNaN(left) ? 0 : left;
    }
    return period.ends - now();
  }

  #usable(what: string): void {
    if (this.#settled !== undefined) {
      throw new LeaseholdError({
        kind: "invalid",
        detail: `the lease on ${this.id} was ${this.#settled} already`,
        message: `cannot ${what}: the lease on ${this.id} was ${this.#settled} already (the client's lower-level ${what}() sends it anyway)`,
      });
    }
  }

  /** Completed or released: no renewal, no expiry watch, and `lost` never fires. */
  #settle(how: "completed" | "released"): void {
    this.#settled = how;
    this.#running?.abort();
    this.#running = undefined;
    this.#expiryTimer?.cancel();
    this.#expiryTimer = undefined;
  }

  #lose(reason: LeaseholdError): void {
    if (this.#settled !== undefined || this.#lost.signal.aborted) return;
    this.#running?.abort();
    this.#running = undefined;
    this.#expiryTimer?.cancel();
    this.#expiryTimer = undefined;
    this.#lost.abort(reason);
  }

  /**
   * Fires `lost` when the lease's time runs out (the renewing loop is not running), however
   * far off that is (a lease of up to 30 days outlasts what one `setTimeout` can wait).
   */
  #watchExpiry(): void {
    this.#expiryTimer?.cancel();
    this.#expiryTimer = undefined;
    const left = this.#left();
    if (left === undefined) return;
    this.#expiryTimer = startTimer(left, () => this.#lose(expired(this.id)), { keepAlive: false });
  }

  #start(renewedHere: boolean): void {
    const running = new AbortController();
    this.#running = running;
    this.#renewing(running.signal, renewedHere)
      .catch(() => undefined) // stopped while waiting
      .finally(() => {
        if (this.#running === running) this.#running = undefined;
      });
  }

  /**
   * Renews at a third of each lease period until the lease is lost or `signal` aborts.
   * `renewedHere`: the current period comes from a renewal, rather than the claim.
   */
  async #renewing(signal: AbortSignal, renewedHere: boolean): Promise<void> {
    const policy = this.#transport.policy;
    const deciding = Math.max(leaseTime(this.#info, this.#leaseMs) / 3, MIN_DECIDING_MS);
    for (;;) {
      const period = this.#period;
      if (period === undefined) return;
      if (period !== null) {
        await sleep(period.began + (period.ends - period.began) / 3 - now(), signal, false);
      }
      let tried = false;
      // While the answer of a renewal decides (the lease's age is not known): until when.
      let decideBy: number | undefined;
      for (;;) {
        const started = now();
        const current = this.#period;
        // Retries while the period lasts. Once it is over by this count: lost, if a
        // renewal was tried in it or it came from one; else (the claim's period was over
        // before the guard began, or never known) renewals for up to `deciding`, whose
        // first answer decides.
        let ends: number;
        if (current != null && started < current.ends) {
          ends = current.ends;
        } else if (decideBy !== undefined ? started >= decideBy : tried || renewedHere) {
          this.#lose(expired(this.id));
          return;
        } else {
          decideBy ??= started + deciding;
          ends = decideBy;
        }
        tried = true;
        let info: LeaseInfo<D>;
        try {
          info = await renewCall<D>(
            this.#transport,
            this.pool,
            this.id,
            this.#ref({ leaseMs: this.#renewalLeaseMs() }),
            { policy: { ...policy, maxElapsedMs: ends - started }, signal },
          );
        } catch (error) {
          if (signal.aborted) return;
          // A refusal: the lease is not ours any more (or never will be renewed).
          if (isRefusal(error)) {
            this.#lose(error);
            return;
          }
          // No answer, or an answer to come back later (429, 502–504), or retries given
          // up: try again while there is time, no sooner than the service asked when that
          // is still within it.
          const left = Math.max(0, ends - now());
          let pause = Math.min(Math.max(left / 4, 10), 1000);
          const retryAfterMs = error instanceof LeaseholdError ? error.retryAfterMs : undefined;
          if (retryAfterMs !== undefined && retryAfterMs < left) pause = Math.max(pause, retryAfterMs);
          await sleep(Math.min(pause, left), signal, false);
          continue;
        }
        if (signal.aborted) return;
        this.#info = info;
        const next = localExpiry(info, this.#leaseMs, started);
        this.#period = next === undefined ? undefined : { began: started, ends: next };
        renewedHere = true;
        break;
      }
    }
  }
}

/**
 * A refusal by the service (a 4xx problem answered at once): the lease is not ours. Never
 * an answer that asks to come back later (429; 502–504 are not 4xx), which says nothing
 * about the lease, nor 408 (the request's body was late: nothing was done), whatever kind
 * the transport gave it.
 */
function isRefusal(error: unknown): error is LeaseholdError {
  return (
    error instanceof LeaseholdError &&
    error.kind === "problem" &&
    error.status >= 400 &&
    error.status < 500 &&
    error.status !== 408 &&
    error.status !== 429
  );
}

/** Just the signal of a call's options (what the guard passes on to the transport). */
function signalOnly(options: CallOptions): SendOptions {
  return options.signal === undefined ? {} : { signal: options.signal };
}

/** The reason of a lease that ran out before a renewal succeeded. */
function expired(id: string): LeaseholdError {
  return new LeaseholdError({
    kind: "lease_expired",
    code: "lease_lost",
    detail: `the lease on ${id} expired before a renewal succeeded`,
    message: `lease lost: the lease on ${id} expired before a renewal succeeded`,
  });
}

/** A lease time the claim named (0 is none: the pool's). */
function named(leaseMs: number | undefined): number | undefined {
  return leaseMs !== undefined && leaseMs > 0 ? leaseMs : undefined;
}

/**
 * The lease time: `leaseMs` when the claim named one, else what is left of the lease by
 * Redis's clock (trusting the two clocks to agree). 0 for a lease without expiry.
 */
function leaseTime(info: LeaseInfo<unknown>, leaseMs: number | undefined): number {
  if (info.lease_expires_at === null) return 0;
  const ms = named(leaseMs);
  if (ms !== undefined) return ms;
  const left = Date.parse(info.lease_expires_at) - Date.now();
  return Number.isNaN(left) ? 0 : Math.max(0, left);
}

/**
 * When the lease runs out by the holder's clock: `leaseMs` after `sentAt` when the claim
 * named its lease time; else by the lease's expiry as Redis's clock put it. Undefined for
 * a lease without expiry.
 */
function localExpiry(info: LeaseInfo<unknown>, leaseMs: number | undefined, sentAt: number): number | undefined {
  if (info.lease_expires_at === null) return undefined;
  const from = named(leaseMs) !== undefined ? sentAt : now();
  return from + leaseTime(info, leaseMs);
}
