/**
 * {@link Client}: a method per endpoint of Leasehold's HTTP API.
 *
 * @module
 */

import { EventStream } from "./events.js";
import { Lease, completeCall, releaseCall, renewCall } from "./lease.js";
import { resolveRetryPolicy, type RetryPolicy } from "./retry.js";
import {
  Transport,
  checkIdempotencyKey,
  decode,
  replayed,
  type Answer,
  type Call,
  type RetryInfo,
} from "./transport.js";
import type {
  AddedItems,
  AssignOptions,
  CallOptions,
  ClaimItemOptions,
  ClaimNextOptions,
  CounterDraw,
  CounterValue,
  EventPage,
  FollowEventsOptions,
  GetCounterOptions,
  Item,
  ItemPage,
  JsonObject,
  LeaseInfo,
  LeasePage,
  LeaseRef,
  ListEventsOptions,
  ListItemsOptions,
  NewItem,
  NextCounterOptions,
  PageOptions,
  Pool,
  PoolPage,
  PoolSettings,
  Preconditions,
  PutItemOptions,
  ReleaseOptions,
  RequeueOptions,
  TenantInfo,
} from "./types.js";
import { defined, etag, now, path, time } from "./util.js";

/** The settings of a {@link Client}. */
export interface ClientOptions {
  /** Where the service is, such as `http://127.0.0.1:8080` (a path prefix is kept). */
  baseUrl: string;
  /** The API key (`Authorization: Bearer`); leave it out for `leasehold dev`. */
  apiKey?: string;
  /**
   * How long one attempt may take, from sending to the last byte of the answer (default
   * 10,000 ms). A long-poll claim gets its `waitMs` on top.
   */
  timeoutMs?: number;
  /**
   * How calls are retried: a number of retries (`0`: never), or some of the
   * {@link RetryPolicy}'s settings (default: 5 attempts, backoff from 100 ms to 5 s, at
   * most 30 s in all).
   */
  retries?: number | Partial<RetryPolicy>;
  /** Told before each retry, with why and how long the client waits (for logs, metrics). */
  onRetry?: (info: RetryInfo) => void;
  /** A `fetch` to send with instead of the global one. */
  fetch?: typeof fetch;
}

/** What `getItem` answers: the item, and its ETag as the header gave it (`"\"3\""`). */
export interface ItemWithETag<D = JsonObject> {
  item: Item<D>;
  etag: string;
}

/** What `putItem` answers: the item, its ETag, and whether it was created (201). */
export interface PutItemResult<D = JsonObject> extends ItemWithETag<D> {
  created: boolean;
}

/** Not part of the options a caller passes: what a handle shares with its client. */
const SHARED = Symbol("leasehold.shared");
interface HandleOptions extends ClientOptions {
  [SHARED]?: { transport: Transport; key: string };
}

/**
 * A client of one Leasehold deployment.
 *
 * - Every write (POST, PUT, PATCH, DELETE) carries an `Idempotency-Key` (a fresh UUID per
 *   call, the same on each of its retries), so the service applies it once and replays
 *   its answer to a retry.
 * - Calls are retried on no answer (network error, timeout), 429, 502, 503 and 504, never
 *   on another 4xx, with exponential backoff and full jitter, capped, bounded in attempts
 *   and total time; `Retry-After` is honoured.
 * - Claims hand back {@link Lease} guards that renew themselves at a third of the lease
 *   time while held.
 * - Every call takes an `AbortSignal` (`signal`, in its options or in a last
 *   {@link CallOptions} argument) that gives it up, retries and all.
 * - Failures are {@link LeaseholdError}s.
 *
 * Answers are the API's JSON as the service wrote it (snake_case fields, typed as
 * interfaces); options and what the client makes up are camelCase.
 */
export class Client {
  readonly #transport: Transport;
  /** Set by `withIdempotencyKey`: the key every write of this handle carries. */
  readonly #key: string | undefined;

  constructor(options: ClientOptions) {
    const shared = (options as HandleOptions)[SHARED];
    if (shared !== undefined) {
      this.#transport = shared.transport;
      this.#key = shared.key;
      return;
    }
    this.#transport = new Transport({
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      timeoutMs: options.timeoutMs ?? 10_000,
      policy: resolveRetryPolicy(options.retries),
      fetch: options.fetch,
      onRetry: options.onRetry,
    });
    this.#key = undefined;
  }

  /**
   * A handle whose writes all carry `key` as their `Idempotency-Key`, instead of a fresh
   * one per call: for a call that must be applied once even when the process making it
   * is retried (a serverless invocation's request id, a job id). The service answers a
   * repeat with its first answer (the same leases, the same counter values). Use it for
   * one logical operation: the same key on a different request is refused with 409
   * `idempotency_key_reused` (keys are scoped to a pool or counter, so one key may serve a
   * claim in a pool and a draw of a counter). The handle shares the client's connections,
   * settings and retry count; leases it grants renew with fresh keys.
   */
  withIdempotencyKey(key: string): Client {
    checkIdempotencyKey(key);
    const options: HandleOptions = { baseUrl: this.#transport.baseUrl, [SHARED]: { transport: this.#transport, key } };
    return new Client(options);
  }

  /** The Idempotency-Key of this handle's writes, if it was made by `withIdempotencyKey`. */
  get idempotencyKey(): string | undefined {
    return this.#key;
  }

  /** How many retries this client (and its handles) has made, over all calls. */
  get retryCount(): number {
    return this.#transport.retries;
  }

  /** The client's retry policy. */
  get retryPolicy(): Readonly<RetryPolicy> {
    return this.#transport.policy;
  }

  /** `GET /readyz`: resolves once the service can serve (Redis reachable, scripts loaded). */
  async ready(options: CallOptions = {}): Promise<void> {
    await this.#send({ method: "GET", path: "/readyz", ...signalOf(options) });
  }

  // -------------------------------------------------------------------------------------
  // Pools
  // -------------------------------------------------------------------------------------

  /** `PUT /v1/pools/{pool}`: creates the pool or changes its settings (those given). */
  async putPool(pool: string, settings: PoolSettings = {}, options: CallOptions = {}): Promise<Pool> {
    const {
      leaseMs,
      maxLeasesPerHolder,
      maxAttempts,
      requireIfMatch,
      maxEvents,
      keepDoneMs,
      keepDeadMs,
      paused,
      ...rest
    } = settings;
    const body = {
      ...rest,
      ...defined({
        lease_ms: leaseMs,
        max_leases_per_holder: maxLeasesPerHolder,
        max_attempts: maxAttempts,
        require_if_match: requireIfMatch,
        max_events: maxEvents,
        keep_done_ms: keepDoneMs,
        keep_dead_ms: keepDeadMs,
        paused,
      }),
    };
    return this.#json({ method: "PUT", path: path(["v1", "pools", pool]), body, ...signalOf(options) });
  }

  /** `GET /v1/pools/{pool}`: its settings, counts by state, stats and usage. */
  async getPool(pool: string, options: CallOptions = {}): Promise<Pool> {
    return this.#json({ method: "GET", path: path(["v1", "pools", pool]), ...signalOf(options) });
  }

  /**
   * `GET /v1/pools`: one page of this tenant's pools by name (up to `limit`, default 100),
   * after the name `after`. Pass the page's `next_after` as `after` for the next page.
   */
  async listPools(options: { limit?: number; after?: string | null } & CallOptions = {}): Promise<PoolPage> {
    return this.#json({
      method: "GET",
      path: path(["v1", "pools"], { after: options.after, limit: options.limit }),
      ...signalOf(options),
    });
  }

  /** `DELETE /v1/pools/{pool}`: the pool and all its items. */
  async deletePool(pool: string, options: CallOptions = {}): Promise<void> {
    await this.#send({ method: "DELETE", path: path(["v1", "pools", pool]), ...signalOf(options) });
  }

  /** `GET /v1/tenant`: the caller's tenant, its pool count and its limits. */
  async tenant(options: CallOptions = {}): Promise<TenantInfo> {
    return this.#json({ method: "GET", path: path(["v1", "tenant"]), ...signalOf(options) });
  }

  // -------------------------------------------------------------------------------------
  // Items
  // -------------------------------------------------------------------------------------

  /**
   * `POST /v1/pools/{pool}/items`: adds 1 to 1000 items (creating the pool if need be).
   * Items whose id exists already are left as they are, and listed in `existing`.
   */
  async addItems(pool: string, items: NewItem[], options: CallOptions = {}): Promise<AddedItems> {
    const body = {
      items: items.map(({ id, priority, data, availableAt, delayMs, ...rest }) => ({
        id,
        ...rest,
        ...defined({ priority, data, available_at: time(availableAt), delay_ms: delayMs }),
      })),
    };
    return this.#json({ method: "POST", path: path(["v1", "pools", pool, "items"]), body, ...signalOf(options) });
  }

  /** `GET /v1/pools/{pool}/items/{id}`: the item and its ETag, for `ifMatch`. */
  async getItem<D = JsonObject>(pool: string, id: string, options: CallOptions = {}): Promise<ItemWithETag<D>> {
    const answer = await this.#send({
      method: "GET",
      path: path(["v1", "pools", pool, "items", id]),
      ...signalOf(options),
    });
    const item = decode<Item<D>>(answer);
    return { item, etag: answer.headers.get("etag") ?? `"${item.version}"` };
  }

  /**
   * `PUT /v1/pools/{pool}/items/{id}`: creates or replaces the item's data (and
   * priority), under `expectedVersion` (409 `version_conflict`) and the header
   * preconditions (412 `precondition_failed`, 409 `lease_lost`).
   */
  async putItem<D = JsonObject>(
    pool: string,
    id: string,
    data: object,
    options: PutItemOptions = {},
  ): Promise<PutItemResult<D>> {
    const { expectedVersion, priority } = options;
    const answer = await this.#send({
      method: "PUT",
      path: path(["v1", "pools", pool, "items", id]),
      body: { data, ...defined({ priority, expected_version: expectedVersion }) },
      headers: preconditions(options),
      ...signalOf(options),
    });
    const item = decode<Item<D>>(answer);
    return { item, etag: answer.headers.get("etag") ?? `"${item.version}"`, created: answer.status === 201 };
  }

  /**
   * `PATCH /v1/pools/{pool}/items/{id}`: merges `patch` into the item's data (a JSON merge
   * patch, RFC 7396: `null` removes a field), under the preconditions.
   */
  async patchItem<D = JsonObject>(
    pool: string,
    id: string,
    patch: object,
    options: Preconditions = {},
  ): Promise<ItemWithETag<D>> {
    const answer = await this.#send({
      method: "PATCH",
      path: path(["v1", "pools", pool, "items", id]),
      body: patch,
      contentType: "application/merge-patch+json",
      headers: preconditions(options),
      ...signalOf(options),
    });
    const item = decode<Item<D>>(answer);
    return { item, etag: answer.headers.get("etag") ?? `"${item.version}"` };
  }

  /** `DELETE /v1/pools/{pool}/items/{id}`, under the preconditions. */
  async deleteItem(pool: string, id: string, options: Preconditions = {}): Promise<void> {
    await this.#send({
      method: "DELETE",
      path: path(["v1", "pools", pool, "items", id]),
      headers: preconditions(options),
      ...signalOf(options),
    });
  }

  /**
   * `GET /v1/pools/{pool}/items`: one page of items (by state, then claim order); pass
   * its `next_cursor` as `cursor` for the next.
   */
  async listItems<D = JsonObject>(pool: string, options: ListItemsOptions = {}): Promise<ItemPage<D>> {
    const { state, holder, limit, cursor } = options;
    return this.#json({
      method: "GET",
      path: path(["v1", "pools", pool, "items"], { state, holder, limit, cursor }),
      ...signalOf(options),
    });
  }

  /**
   * `PUT /v1/pools/{pool}/items/{id}/holder`: assigns the item to `holder` on their behalf
   * (whoever had it loses it; the answer carries the new `token`), or with `null` takes it
   * back from whoever has it.
   */
  async assignItem<D = JsonObject>(
    pool: string,
    id: string,
    holder: string | null,
    options: AssignOptions = {},
  ): Promise<Item<D>> {
    const { expectedVersion, ifMatch, leaseMs } = options;
    return this.#json({
      method: "PUT",
      path: path(["v1", "pools", pool, "items", id, "holder"]),
      body: { holder, ...defined({ lease_ms: leaseMs, expected_version: expectedVersion }) },
      headers: ifMatch === undefined ? {} : { "If-Match": etag(ifMatch) },
      ...signalOf(options),
    });
  }

  /**
   * `POST /v1/pools/{pool}/items/{id}/requeue`: a done or dead item back to available
   * (its attempts reset), an available or delayed one available now; with `delayMs` or
   * `availableAt`, delayed until then instead.
   */
  async requeueItem<D = JsonObject>(pool: string, id: string, options: RequeueOptions = {}): Promise<Item<D>> {
    const { priority, delayMs, availableAt } = options;
    return this.#json({
      method: "POST",
      path: path(["v1", "pools", pool, "items", id, "requeue"]),
      body: defined({ priority, delay_ms: delayMs, available_at: time(availableAt) }),
      ...signalOf(options),
    });
  }

  /** `GET /v1/pools/{pool}/leases?holder=`: one page of the leases `holder` has now, in id order. */
  async listLeases<D = JsonObject>(pool: string, holder: string, options: PageOptions = {}): Promise<LeasePage<D>> {
    const { limit, cursor } = options;
    return this.#json({
      method: "GET",
      path: path(["v1", "pools", pool, "leases"], { holder, limit, cursor }),
      ...signalOf(options),
    });
  }

  // -------------------------------------------------------------------------------------
  // Leases
  // -------------------------------------------------------------------------------------

  /**
   * `POST /v1/pools/{pool}/claim`: leases the best `count` available items (possibly
   * none), each as a {@link Lease} guard that renews itself. With `waitMs`, waits that
   * long for an item when none is available; the attempt's timeout (and the retries' time)
   * grow by as much.
   */
  async claimNext<D = JsonObject>(pool: string, options: ClaimNextOptions): Promise<Lease<D>[]> {
    const { holder, count, leaseMs, waitMs, create, signal, ...rest } = options;
    const sentAt = now();
    const call: Call = {
      method: "POST",
      path: path(["v1", "pools", pool, "claim"]),
      body: { ...rest, holder, ...defined({ count, lease_ms: leaseMs, wait_ms: waitMs, create }) },
      ...signalOf({ signal }),
    };
    if (waitMs !== undefined && waitMs > 0) {
      call.timeoutMs = this.#transport.timeoutMs + waitMs;
      call.policy = { ...this.#transport.policy, maxElapsedMs: this.#transport.policy.maxElapsedMs + waitMs };
    }
    const answer = await this.#send(call);
    const { leases } = decode<{ leases: LeaseInfo<D>[] }>(answer);
    const grantedAfter = replayed(answer) ? undefined : sentAt;
    return leases.map((info) => new Lease<D>(this.#transport, pool, info, leaseMs, grantedAfter));
  }

  /**
   * `POST /v1/pools/{pool}/items/{id}/claim`: leases the named item if it is available, or
   * renews it if it is this holder's already (the same lease, the same token); 409
   * `already_leased` if another holder has it.
   */
  async claimItem<D = JsonObject>(pool: string, id: string, options: ClaimItemOptions): Promise<Lease<D>> {
    const { holder, leaseMs, signal, ...rest } = options;
    const sentAt = now();
    const answer = await this.#send({
      method: "POST",
      path: path(["v1", "pools", pool, "items", id, "claim"]),
      body: { ...rest, holder, ...defined({ lease_ms: leaseMs }) },
      ...signalOf({ signal }),
    });
    const info = decode<LeaseInfo<D>>(answer);
    return new Lease<D>(this.#transport, pool, info, leaseMs, replayed(answer) ? undefined : sentAt);
  }

  /**
   * A guard for a lease this holder has already (from `listLeases` after a restart): it
   * renews it at once and from then on. `leaseMs` as in a claim.
   */
  adopt<D = JsonObject>(pool: string, info: LeaseInfo<D>, options: { leaseMs?: number } = {}): Lease<D> {
    return new Lease<D>(this.#transport, pool, info, options.leaseMs, undefined);
  }

  /**
   * `POST .../items/{id}/renew`: extends the lease (by `leaseMs`, or the pool's lease
   * time), keeping its token; 409 `lease_lost` if it is no longer current. (A {@link Lease}
   * does this by itself; this is for a lease known only by its holder and token.)
   */
  async renew<D = JsonObject>(
    pool: string,
    id: string,
    lease: LeaseRef & { leaseMs?: number },
    options: CallOptions = {},
  ): Promise<LeaseInfo<D>> {
    const { holder, token, leaseMs } = lease;
    const call = { ...this.#keyed(), ...signalOf(options) };
    return renewCall<D>(this.#transport, pool, id, { holder, token, leaseMs }, call);
  }

  /** `POST .../items/{id}/release`: gives the item back, at once or after `delayMs`. */
  async release<D = JsonObject>(
    pool: string,
    id: string,
    lease: LeaseRef & ReleaseOptions,
    options: CallOptions = {},
  ): Promise<Item<D>> {
    return releaseCall<D>(this.#transport, pool, id, lease, { ...this.#keyed(), ...signalOf(options) });
  }

  /** `POST .../items/{id}/complete`: the item is done; `data`, if given, replaces its data. */
  async complete<D = JsonObject>(
    pool: string,
    id: string,
    lease: LeaseRef & { data?: object },
    options: CallOptions = {},
  ): Promise<Item<D>> {
    return completeCall<D>(this.#transport, pool, id, lease, { ...this.#keyed(), ...signalOf(options) });
  }

  // -------------------------------------------------------------------------------------
  // Counters
  // -------------------------------------------------------------------------------------

  /**
   * `POST /v1/counters/{name}/next`: `count` contiguous values (and ids, with a `format`
   * such as `CASE-{date}-{seq:05}`), starting at 1 in each period.
   */
  async nextCounter(name: string, options: NextCounterOptions = {}): Promise<CounterDraw> {
    const { count, period, tz, format, signal, ...rest } = options;
    return this.#json({
      method: "POST",
      path: path(["v1", "counters", name, "next"]),
      body: { ...rest, ...defined({ count, period, tz, format }) },
      ...signalOf({ signal }),
    });
  }

  /** `GET /v1/counters/{name}`: the last value issued in a period (0 if none). */
  async getCounter(name: string, options: GetCounterOptions = {}): Promise<CounterValue> {
    return this.#json({
      method: "GET",
      path: path(["v1", "counters", name], { period: options.period, tz: options.tz }),
      ...signalOf(options),
    });
  }

  // -------------------------------------------------------------------------------------
  // Events
  // -------------------------------------------------------------------------------------

  /**
   * `GET /v1/pools/{pool}/events`: up to `limit` of the pool's events after the one with
   * id `after` (from the oldest kept without it), oldest first. Pass the page's
   * `next_after` as `after` for the next page.
   */
  async listEvents(pool: string, options: ListEventsOptions = {}): Promise<EventPage> {
    return this.#json({
      method: "GET",
      path: path(["v1", "pools", pool, "events"], { after: options.after, limit: options.limit }),
      ...signalOf(options),
    });
  }

  /**
   * `GET /v1/pools/{pool}/events/stream`: follows the pool's events live (see
   * {@link EventStream}), resuming by itself after the last event it yielded.
   *
   * ```ts
   * for await (const event of client.followEvents("cases", { signal })) {
   *   if (event.type === "trimmed") console.warn("some events were dropped");
   *   else console.log(event.id, event.type, event.item, event.holder);
   * }
   * ```
   */
  followEvents(pool: string, options: FollowEventsOptions = {}): EventStream {
    return new EventStream(this.#transport, pool, options.after ?? undefined, options.signal);
  }

  // -------------------------------------------------------------------------------------

  /** The key options of a write of this handle. */
  #keyed(): { idempotencyKey?: string } {
    return this.#key === undefined ? {} : { idempotencyKey: this.#key };
  }

  #send(call: Call): Promise<Answer> {
    return this.#transport.send({ ...this.#keyed(), ...call });
  }

  async #json<T>(call: Call): Promise<T> {
    return decode<T>(await this.#send(call));
  }
}

/** The `signal` of a call's options, as a {@link Call} takes it (nothing when none). */
function signalOf(options: CallOptions): { signal?: AbortSignal } {
  return options.signal === undefined ? {} : { signal: options.signal };
}

/** The headers of an item write's preconditions. */
function preconditions(options: Preconditions): Record<string, string> {
  const headers: Record<string, string> = {};
  if (options.ifMatch !== undefined) headers["If-Match"] = etag(options.ifMatch);
  if (options.ifNoneMatch !== undefined) headers["If-None-Match"] = options.ifNoneMatch;
  if (options.leaseToken !== undefined) headers["Lease-Token"] = String(options.leaseToken);
  return headers;
}
