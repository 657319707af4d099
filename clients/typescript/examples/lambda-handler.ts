/**
 * An AWS-Lambda-style handler that allocates the next case to a user: it claims the next
 * item of the `cases` pool for `event.user` and draws a case ID such as
 * `CASE-20260110-00042` from a per-day counter.
 *
 * A Lambda may run one invocation more than once (a retry after a timeout, a duplicate
 * event). Both writes carry the invocation's `context.awsRequestId` as their
 * Idempotency-Key (through `withIdempotencyKey`), so a repeat of the invocation gets the
 * very same case and the same case ID back, instead of a second case and a gap in the
 * numbering. (Keys are scoped to a pool or a counter, so one key serves both calls.)
 *
 * Settings come from the environment: LEASEHOLD_URL, LEASEHOLD_KEY, CASES_POOL,
 * CASE_COUNTER.
 */

import { Client, LeaseholdError } from "leasehold-client";

/** What the function is invoked with. */
export interface AllocateEvent {
  /** Who asks for a case: the lease's holder. */
  user: string;
}

/** The part of the Lambda context this handler uses. */
export interface LambdaContext {
  awsRequestId: string;
}

/** What the function answers. */
export type Allocation =
  | {
      allocated: true;
      /** The case ID drawn for it, `CASE-{date}-{seq:05}`. */
      caseId: string;
      /** The item claimed. */
      item: string;
      /** The lease's fencing token: downstream writes about the case carry it. */
      token: number;
      data: unknown;
    }
  | { allocated: false; reason: string };

const client = new Client({
  baseUrl: process.env["LEASEHOLD_URL"] ?? "http://127.0.0.1:8080",
  ...(process.env["LEASEHOLD_KEY"] ? { apiKey: process.env["LEASEHOLD_KEY"] } : {}),
  // A Lambda's own time is short: give up well before it runs out.
  timeoutMs: 5_000,
  retries: { maxElapsedMs: 10_000 },
});

export const handler = async (event: AllocateEvent, context: LambdaContext): Promise<Allocation> => {
  const pool = process.env["CASES_POOL"] ?? "cases";
  const counter = process.env["CASE_COUNTER"] ?? "case-ids";
  // Every write of this invocation, and of any repeat of it, carries the same key.
  const once = client.withIdempotencyKey(context.awsRequestId);

  // The case is the user's until they complete it or it is reassigned: a lease without
  // expiry, so nothing has to renew it after the function returns.
  let leases;
  try {
    leases = await once.claimNext(pool, { holder: event.user, leaseMs: 0 });
  } catch (error) {
    if (error instanceof LeaseholdError && error.code === "holder_at_capacity") {
      return { allocated: false, reason: `${event.user} has as many cases as allowed (${error.limit})` };
    }
    if (error instanceof LeaseholdError && error.code === "not_found") {
      return { allocated: false, reason: `no pool named ${pool}` };
    }
    throw error; // outcome unknown: the Lambda's retry, with the same key, is safe
  }
  const [lease] = leases;
  if (lease === undefined) return { allocated: false, reason: "no case is waiting" };

  const draw = await once.nextCounter(counter, { format: "CASE-{date}-{seq:05}" });
  const caseId = draw.ids?.[0];
  if (caseId === undefined) throw new Error("the counter drew no id");
  return { allocated: true, caseId, item: lease.id, token: lease.token, data: lease.data };
};
