/**
 * The bodies Leasehold answers with, typed, and the options the client's methods take.
 *
 * One convention runs through the package: **what the service answers is handed over as
 * the service wrote it** (items, leases as the API writes them, pools, pages, events and
 * counter draws keep the API's snake_case fields: `lease_expires_at`, `next_cursor`), and
 * **what this client makes up is camelCase** (every method's options, `{ item, etag }`,
 * the {@link Lease} guard with its `expiresAt`).
 *
 * Times are RFC 3339 UTC strings with milliseconds, by Redis's clock.
 *
 * @module
 */

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object: what an item's data is. */
export type JsonObject = { [key: string]: JsonValue };

/** An item's state. */
export type ItemState = "available" | "leased" | "delayed" | "done" | "dead";

/** The type of a pool event (also the SSE event name). */
export type EventType =
  | "added"
  | "claimed"
  | "renewed"
  | "released"
  | "completed"
  | "expired"
  | "delay_over"
  | "assigned"
  | "unassigned"
  | "written"
  | "requeued"
  | "deleted"
  | "removed"
  | "paused"
  | "resumed";

// ---------------------------------------------------------------------------------------
// Answers, as the service writes them.
// ---------------------------------------------------------------------------------------

/** An item (`GET /v1/pools/{pool}/items/{id}` and every answer that returns one). */
export interface Item<D = JsonObject> {
  id: string;
  pool: string;
  state: ItemState;
  /** Higher is claimed first; first in, first out within a priority. */
  priority: number;
  /** +1 on every change; the ETag is `"<version>"`. */
  version: number;
  /** Who holds the lease; null when not leased. */
  holder: string | null;
  /** When the lease ends; null when not leased, or leased without expiry. */
  lease_expires_at: string | null;
  /** Leases granted since the item was added or requeued. */
  attempts: number;
  data: D;
  created_at: string;
  updated_at: string;
  /** The fencing token: only in the answer to an assignment. */
  token?: number;
  /** When a `delayed` item becomes available; absent otherwise. */
  available_at?: string;
}

/** A lease as the API writes it: what claims, renewals and `listLeases` answer. */
export interface LeaseInfo<D = JsonObject> {
  /** The item's id. */
  id: string;
  /** The fencing token: strictly increasing over every grant in the pool; renew keeps it. */
  token: number;
  version: number;
  holder: string;
  /** When the lease ends; null for a lease without expiry. */
  lease_expires_at: string | null;
  priority: number;
  attempts: number;
  data: D;
}

/** `{created, existing}`: which ids were new, and which existed (and were left alone). */
export interface AddedItems {
  created: string[];
  existing: string[];
}

/** A page of items; `next_cursor` is null on the last page. */
export interface ItemPage<D = JsonObject> {
  items: Item<D>[];
  next_cursor: string | null;
}

/** A page of a holder's leases, in id order; `next_cursor` is null on the last page. */
export interface LeasePage<D = JsonObject> {
  leases: LeaseInfo<D>[];
  next_cursor: string | null;
}

/** A pool's settings, as the service answers them. */
export interface PoolConfig {
  lease_ms: number;
  max_leases_per_holder: number;
  max_attempts: number;
  require_if_match: boolean;
  max_events: number;
  /** null: done items are kept for ever. */
  keep_done_ms: number | null;
  /** null: dead items are kept for ever. */
  keep_dead_ms: number | null;
  paused: boolean;
}

/** How many items a pool has in each state. */
export interface PoolCounts {
  available: number;
  leased: number;
  delayed: number;
  done: number;
  dead: number;
}

/** What has happened in a pool since it was created. */
export interface PoolStats {
  claims: number;
  conflicts: number;
  expired: number;
}

/** What a pool holds, against its limits. */
export interface PoolUsage {
  items: number;
  max_items: number;
  bytes: number;
  max_bytes: number;
  data_bytes: number;
  event_bytes: number;
  answer_bytes: number;
  counting?: boolean;
}

/** A pool (`GET /v1/pools/{pool}`, `PUT /v1/pools/{pool}`). */
export interface Pool {
  name: string;
  config: PoolConfig;
  counts: PoolCounts;
  stats: PoolStats;
  usage?: PoolUsage;
  created_at?: string;
  updated_at?: string;
}

/** One pool of a listing. */
export interface PoolSummary {
  name: string;
  counts: PoolCounts;
}

/** A page of the tenant's pools, by name; `next_after` is null on the last page. */
export interface PoolPage {
  pools: PoolSummary[];
  next_after: string | null;
}

/** `GET /v1/tenant`: the caller's tenant, its pool count and its limits. */
export interface TenantInfo {
  tenant: string;
  pools: number;
  limits: {
    max_pools_per_tenant: number;
    max_items_per_pool: number;
    max_pool_bytes: number;
  };
}

/**
 * One change in a pool's log: an entry of `listEvents` and of `followEvents`.
 * (Exported as `Event` too.)
 */
export interface PoolEvent {
  /** Its place in the log, `<ms>-<seq>`: pass it as `after` to go on from here. */
  id: string;
  type: EventType;
  /** The item's id; null for a change to the pool itself (`paused`, `resumed`). */
  item: string | null;
  state: ItemState | null;
  version: number | null;
  holder: string | null;
  token: number | null;
  /** When the fact happened, by Redis's clock (for `expired`: when the lease ended). */
  at: string;
  lease_expires_at: string | null;
}

/** A page of events, oldest first. */
export interface EventPage {
  events: PoolEvent[];
  /** The `after` of the next page (the last event's id, or the `after` given). */
  next_after: string | null;
  /** Events after `after` were dropped by the pool's cap before they were read. */
  trimmed: boolean;
}

/**
 * What `followEvents` yields in place of events that were dropped by the pool's cap
 * (`max_events`) before they could be sent: the events that follow start at the oldest
 * kept, and what came between is lost.
 */
export interface TrimmedMarker {
  type: "trimmed";
}

/** What `followEvents` yields: the next event, or the {@link TrimmedMarker}. */
export type FollowedEvent = PoolEvent | TrimmedMarker;

/** Values drawn from a counter: a contiguous batch within one period. */
export interface CounterDraw {
  name: string;
  /** The day (`YYYY-MM-DD`) the values belong to; null for a counter without periods. */
  period: string | null;
  values: number[];
  /** The values rendered with `format`; only when a format was given. */
  ids?: string[];
}

/** A counter's last value in a period (0 if none was issued). */
export interface CounterValue {
  name: string;
  period: string | null;
  value: number;
}

// ---------------------------------------------------------------------------------------
// What the client's methods take.
// ---------------------------------------------------------------------------------------

/**
 * What every call takes (in its options, or as its last argument where it has none).
 */
export interface CallOptions {
  /**
   * Gives up the call when aborted: the attempt under way is abandoned, or the wait before
   * the next one cut short, and the call throws the signal's reason (a `DOMException`
   * named `AbortError` unless the abort gave another). A write that was already sent may
   * have been applied all the same. An already aborted signal sends nothing.
   */
  signal?: AbortSignal;
}

/** Settings to create a pool with or change; a setting left out keeps its value. */
export interface PoolSettings {
  /** The lease time of a grant that names none, in ms (0: no expiry; default 30,000). */
  leaseMs?: number;
  /** The most leases one holder may have in the pool at once (0: no limit). */
  maxLeasesPerHolder?: number;
  /** Grants after which a lease ending without completion makes the item dead (0: none). */
  maxAttempts?: number;
  /** Item writes must carry a precondition (else 428 `precondition_required`). */
  requireIfMatch?: boolean;
  /** How many of its latest events the pool's log keeps (0: no log; default 10,000). */
  maxEvents?: number;
  /** How long done items are kept, in ms (0: removed at once; null: for ever). */
  keepDoneMs?: number | null;
  /** How long dead items are kept, in ms (as `keepDoneMs`). */
  keepDeadMs?: number | null;
  /** Pause (true: claims grant nothing) or resume (false) the pool. */
  paused?: boolean;
}

/** An item to add. */
export interface NewItem {
  id: string;
  /** Higher first (-1,000,000 to 1,000,000; default 0). */
  priority?: number;
  /** A JSON object of at most 64 KiB. */
  data?: object;
  /** Available only at this time (RFC 3339 string, or a Date); `delayed` until then. */
  availableAt?: string | Date;
  /** Available only this long after it is added; `delayed` until then. */
  delayMs?: number;
}

/**
 * An entity tag for `ifMatch`: the item's version (`3`), or the ETag as `getItem` hands
 * it over (`"\"3\""`).
 */
export type ETagLike = number | string;

/** The header preconditions of an item write (and its {@link CallOptions}). */
export interface Preconditions extends CallOptions {
  /** `If-Match`: only if the item is at this version (else 412 `precondition_failed`). */
  ifMatch?: ETagLike;
  /** `If-None-Match: *`: only if the item does not exist yet (else 412). */
  ifNoneMatch?: "*";
  /** `Lease-Token`: only while this lease is current on the item (else 409 `lease_lost`). */
  leaseToken?: number;
}

/** Options of `putItem`. */
export interface PutItemOptions extends Preconditions {
  /** Only if the item is at this version (0: must not exist), else 409 `version_conflict`. */
  expectedVersion?: number;
  /** The item's new priority. */
  priority?: number;
}

/** Which items `listItems` lists, and from where. */
export interface ListItemsOptions extends CallOptions {
  state?: ItemState;
  holder?: string;
  /** Page size, 1 to 1000 (default 100). */
  limit?: number;
  /** The `next_cursor` of the previous page (null, as the last page gives it: from the start). */
  cursor?: string | null;
}

/** A page of a listing by cursor. */
export interface PageOptions extends CallOptions {
  limit?: number;
  /** The `next_cursor` of the previous page. */
  cursor?: string | null;
}

/** A claim of the best available items. */
export interface ClaimNextOptions extends CallOptions {
  holder: string;
  /** How many items, 1 to 100 (default 1). */
  count?: number;
  /** The lease time (default: the pool's; 0: no expiry). */
  leaseMs?: number;
  /**
   * Wait up to this long (at most 30,000 ms) for an item when none is available
   * (long-poll). The call's timeout and its retry time grow by as much.
   */
  waitMs?: number;
  /** Take a pool that does not exist (yet) as an empty one instead of 404 `not_found`. */
  create?: boolean;
}

/** A claim of one named item. */
export interface ClaimItemOptions extends CallOptions {
  holder: string;
  /** The lease time (default: the pool's; 0: no expiry). */
  leaseMs?: number;
}

/** Who and which lease a lower-level renew, release or complete is about. */
export interface LeaseRef {
  holder: string;
  token: number;
}

/** How to give a lease back. */
export interface ReleaseOptions {
  /** Keep the item `delayed` this long before it is available again. */
  delayMs?: number;
  /** Its new priority. */
  priority?: number;
}

/** Conditions and lease time of an assignment (`PUT .../holder`). */
export interface AssignOptions extends CallOptions {
  /** Only if the item is at this version (else 409 `version_conflict`). */
  expectedVersion?: number;
  /** `If-Match` (else 412 `precondition_failed`). */
  ifMatch?: ETagLike;
  /** The assigned lease's time (default: the pool's). */
  leaseMs?: number;
}

/** Where a requeued item goes. */
export interface RequeueOptions extends CallOptions {
  priority?: number;
  /** `delayed` this long, instead of available at once. */
  delayMs?: number;
  /** `delayed` until then (RFC 3339 string, or a Date), instead of available at once. */
  availableAt?: string | Date;
}

/** A draw of sequence numbers. */
export interface NextCounterOptions extends CallOptions {
  /** How many contiguous values, 1 to 1000 (default 1). */
  count?: number;
  /** `"day"` (default: values start at 1 each day) or `"none"` (never). */
  period?: "day" | "none";
  /** An IANA time zone for the day (default `UTC`). */
  tz?: string;
  /** Also render the values as ids, such as `CASE-{date}-{seq:05}`. */
  format?: string;
}

/** Which period of a counter to read. */
export interface GetCounterOptions extends CallOptions {
  /** A day, `YYYY-MM-DD`, or `"none"` for a counter drawn with period `none`; default today. */
  period?: string;
  /** The time zone that decides which day is today (default `UTC`). */
  tz?: string;
}

/** A page of a pool's events. */
export interface ListEventsOptions extends CallOptions {
  /** The id of the last event already seen (a page's `next_after`); from the oldest kept if left out. */
  after?: string | null;
  /** 1 to 1000 (default 100). */
  limit?: number;
}

/** Where to follow a pool's events from, and until when. */
export interface FollowEventsOptions {
  /** The id of the last event already seen; from the oldest kept if left out (or empty). */
  after?: string | null;
  /**
   * Ends the stream when aborted: the iteration just stops, yielding nothing more (not
   * even an event already received), and the stream stays ended.
   */
  signal?: AbortSignal;
}
