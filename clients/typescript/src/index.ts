/**
 * A TypeScript client for Leasehold: work leases, version-checked items, per-day counters
 * and a pool's live events, over Leasehold's HTTP API.
 *
 * It needs nothing but what every modern runtime has (`fetch`, `AbortController`,
 * `ReadableStream`, `crypto.randomUUID`), so it runs unchanged on Node 18 and later,
 * Deno, Bun, browsers and edge runtimes.
 *
 * ```ts
 * import { Client } from "leasehold-client";
 *
 * const client = new Client({ baseUrl: "http://127.0.0.1:8080" });
 * await client.addItems("cases", [{ id: "c1", priority: 5 }]);
 * for (const lease of await client.claimNext("cases", { holder: "alice", leaseMs: 30_000 })) {
 *   // Renewed in the background while the work runs; lease.lost fires if it is lost.
 *   await lease.complete({ outcome: "resolved" });
 * }
 * ```
 *
 * @module
 */

export { Client, type ClientOptions, type ItemWithETag, type PutItemResult } from "./client.js";
export { Lease, type LeaseState } from "./lease.js";
export { EventStream } from "./events.js";
export {
  LeaseholdError,
  PROBLEM_CODES,
  isOutcomeUnknown,
  isProblem,
  type Current,
  type ErrorKind,
  type ProblemBody,
  type ProblemCode,
} from "./errors.js";
export { DEFAULT_RETRY_POLICY, backoffCeiling, retryDelay, type RetryPolicy } from "./retry.js";
export type { RetryInfo } from "./transport.js";
export type * from "./types.js";
export type { PoolEvent as Event } from "./types.js";
