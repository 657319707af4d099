/**
 * The client's one error type, {@link LeaseholdError}: a problem the service answered with
 * (its stable `code` is a {@link ProblemCode}, the same list the server answers from), no
 * answer at all, or retries given up on, with the last cause.
 *
 * @module
 */

import type { ItemState, JsonValue } from "./types.js";

/**
 * Every problem `code` the service answers with, in the order the server declares them.
 * A caller branches on these, never on `detail` (words for people, not stable).
 */
export const PROBLEM_CODES = [
  /** The request broke a rule: `field` names the field (or header, or path). 400. */
  "invalid_request",
  /** A missing, malformed, unknown or revoked API key. 401. */
  "unauthorized",
  /** No such pool, item, counter or route. 404. */
  "not_found",
  /** The route does not take this method. 405. */
  "method_not_allowed",
  /** The item is leased by another holder. 409. */
  "already_leased",
  /** The lease has expired, was released or reassigned, or the token is not current. 409. */
  "lease_lost",
  /** `expected_version` does not match the item's version. 409. */
  "version_conflict",
  /** The holder already has `max_leases_per_holder` leases (`limit` says how many). 409. */
  "holder_at_capacity",
  /** The pool is paused: claiming a named item is refused until it is resumed. 409. */
  "pool_paused",
  /** The item is done, dead (or, for a claim, delayed): requeue it first. 409. */
  "invalid_state",
  /** This Idempotency-Key was used before for a different request. 409. */
  "idempotency_key_reused",
  /** The write would pass a limit (`quota` names it, with `limit` and `usage`). 409. */
  "quota_exceeded",
  /** An `If-Match` / `If-None-Match` precondition did not hold. 412. */
  "precondition_failed",
  /** The body, or an item's data, is too large. 413. */
  "payload_too_large",
  /** A body that is not JSON. 415. */
  "unsupported_media_type",
  /** The pool requires a precondition on item writes. 428. */
  "precondition_required",
  /** The tenant is over its rate limit: `Retry-After` says when to come back. 429. */
  "rate_limited",
  /** Redis could not be reached in time; a write's outcome is unknown. 503. */
  "backend_unavailable",
  /** Too few replicas acknowledged a write in time; its outcome is unknown. 503. */
  "durability_timeout",
  /** The request's body did not arrive in time. 408. */
  "request_timeout",
  /** A fault of the server's. 500. */
  "internal",
] as const;

/**
 * A problem code: one of {@link PROBLEM_CODES}, or `"unknown"` for an answer whose body is
 * not `application/problem+json` (a load balancer's error page), whose code this client
 * does not know (from a newer server), or for an error that is not an answer at all.
 */
export type ProblemCode = (typeof PROBLEM_CODES)[number] | "unknown";

/** What an item looked like when a write was refused (409, 412): `version` 0 for none. */
export interface Current {
  version: number;
  state: ItemState | null;
  holder: string | null;
}

/** An `application/problem+json` body (RFC 9457) as the service sends it. */
export interface ProblemBody {
  type?: string;
  title?: string;
  status?: number;
  code?: string;
  detail?: string;
  field?: string;
  current?: Current;
  limit?: number;
  quota?: string;
  usage?: number;
  [extension: string]: JsonValue | Current | undefined;
}

/**
 * What kind of failure an error is.
 *
 * - `problem`: the service answered with an error status; `code` says which.
 * - `no_answer`: the connection failed or broke, or the attempt timed out. A write may
 *   have been applied.
 * - `gave_up`: the request was retried until the retry policy's attempts or time ran out,
 *   or the service answered to come back later (429, 502–504) and the policy allowed no
 *   retry (`retries: 0`): never a refusal. The fields (`status`, `code`, …) are the last
 *   attempt's.
 * - `lease_expired`: a lease guard saw its lease's time run out before a renewal
 *   succeeded (the reason of a {@link Lease}'s `lost` signal; never thrown by a call).
 * - `unexpected`: a 2xx answer this client could not read.
 * - `invalid`: the call could not be sent as asked, and nothing was sent (a bad base URL,
 *   a header value that is not visible ASCII, such as an `ifMatch` or `after` with a CR or
 *   LF, or an Idempotency-Key; a lease that was already completed or released).
 */
export type ErrorKind = "problem" | "no_answer" | "gave_up" | "lease_expired" | "unexpected" | "invalid";

/** What {@link LeaseholdError}'s constructor takes. */
export interface LeaseholdErrorInit {
  kind: ErrorKind;
  message: string;
  status?: number;
  code?: ProblemCode;
  detail?: string;
  field?: string;
  current?: Current;
  limit?: number;
  quota?: string;
  usage?: number;
  retryAfterMs?: number;
  requestId?: string;
  problem?: ProblemBody;
  outcomeUnknown?: boolean;
  attempts?: number;
  elapsedMs?: number;
  idempotencyKey?: string;
  cause?: unknown;
}

/**
 * Every way a call of this client can fail.
 *
 * ```ts
 * try {
 *   await lease.complete({ outcome: "resolved" });
 * } catch (e) {
 *   if (e instanceof LeaseholdError && e.code === "lease_lost") {
 *     console.log(`too late: now held by ${e.current?.holder}`);
 *   } else throw e;
 * }
 * ```
 */
export class LeaseholdError extends Error {
  override readonly name = "LeaseholdError";
  /** What kind of failure this is (see {@link ErrorKind}). */
  readonly kind: ErrorKind;
  /** The HTTP status of the (last) answer; 0 when there was none. */
  readonly status: number;
  /** The problem code of the (last) answer: match on this. `"unknown"` when there was none. */
  readonly code: ProblemCode;
  /** Words for people, not stable: the problem's `detail`, or what went wrong. */
  readonly detail: string;
  /** For `invalid_request`: the field (or header, or path) and the rule it broke. */
  readonly field: string | undefined;
  /** For 409 and 412: what the item looks like now (version, state, holder). */
  readonly current: Current | undefined;
  /** For `holder_at_capacity` and `quota_exceeded`: the limit. */
  readonly limit: number | undefined;
  /** For `quota_exceeded`: the name of the limit. */
  readonly quota: string | undefined;
  /** For `quota_exceeded`: what is used. */
  readonly usage: number | undefined;
  /** For 429 and 503: how long the service asked to wait (`Retry-After`), in ms. */
  readonly retryAfterMs: number | undefined;
  /** The answer's `X-Request-Id`, the id of the server's log lines about it. */
  readonly requestId: string | undefined;
  /** The problem body as the service sent it. */
  readonly problem: ProblemBody | undefined;
  /**
   * Whether a write may have been applied although the call failed: no answer, a 5xx, or
   * retries given up on after one of those. Calling again with a new Idempotency-Key may
   * then apply it twice; with the same one (see `Client.withIdempotencyKey`) it is
   * applied at most once.
   */
  readonly outcomeUnknown: boolean;
  /** How many attempts the call made (1 when the first was final; 0 if none was sent). */
  readonly attempts: number;
  /** From the first attempt's start to the last one's end, in ms. */
  readonly elapsedMs: number;
  /** The Idempotency-Key every attempt carried (writes only). */
  readonly idempotencyKey: string | undefined;

  constructor(init: LeaseholdErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.kind = init.kind;
    this.status = init.status ?? 0;
    this.code = init.code ?? "unknown";
    this.detail = init.detail ?? "";
    this.field = init.field;
    this.current = init.current;
    this.limit = init.limit;
    this.quota = init.quota;
    this.usage = init.usage;
    this.retryAfterMs = init.retryAfterMs;
    this.requestId = init.requestId;
    this.problem = init.problem;
    this.outcomeUnknown = init.outcomeUnknown ?? false;
    this.attempts = init.attempts ?? 0;
    this.elapsedMs = init.elapsedMs ?? 0;
    this.idempotencyKey = init.idempotencyKey;
  }
}

/** Whether `error` is a {@link LeaseholdError} with this problem code. */
export function isProblem(error: unknown, code: ProblemCode): error is LeaseholdError {
  return error instanceof LeaseholdError && error.code === code;
}

/**
 * Whether a write may have been applied although `error` says it failed (see
 * {@link LeaseholdError.outcomeUnknown}). False for anything that is not a
 * {@link LeaseholdError}.
 */
export function isOutcomeUnknown(error: unknown): boolean {
  return error instanceof LeaseholdError && error.outcomeUnknown;
}

/** The problem code `code` names, or `"unknown"` for one this client does not know. */
export function problemCode(code: unknown): ProblemCode {
  return typeof code === "string" && (PROBLEM_CODES as readonly string[]).includes(code)
    ? (code as ProblemCode)
    : "unknown";
}
