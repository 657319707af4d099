/**
 * When to send a request again: exponential backoff with full jitter, capped, bounded in
 * attempts and in total time, and `Retry-After` honoured whenever the service sends it.
 *
 * Which attempts are retried at all is fixed (no answer, 429, 502, 503, 504; never another
 * 4xx): a policy only says how often and how long.
 *
 * @module
 */

/** How a request is retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included (1: never retry). Default 5. */
  maxAttempts: number;
  /** The backoff ceiling before the first retry; it doubles with each retry. Default 100 ms. */
  baseDelayMs: number;
  /** The highest backoff ceiling (`Retry-After` is honoured even when longer). Default 5 s. */
  maxDelayMs: number;
  /**
   * The most time one request may take, from its first attempt to its last answer: no
   * attempt starts, and no attempt runs, past it. A `Retry-After` that would end past it
   * is not waited for: the request gives up at once with that answer. Default 30 s.
   */
  maxElapsedMs: number;
}

/** 5 attempts, backoff from 100 ms up to 5 s, at most 30 s in all. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
  maxElapsedMs: 30_000,
});

/**
 * The policy a client option names: a number is how many retries (so `0` never retries),
 * an object changes some of the defaults.
 */
export function resolveRetryPolicy(option: number | Partial<RetryPolicy> | undefined): RetryPolicy {
  if (option === undefined) return { ...DEFAULT_RETRY_POLICY };
  if (typeof option === "number") {
    if (!Number.isInteger(option) || option < 0) {
      throw new RangeError(`retries must be a whole number of retries (0 or more), not ${option}`);
    }
    return { ...DEFAULT_RETRY_POLICY, maxAttempts: option + 1 };
  }
  const policy = { ...DEFAULT_RETRY_POLICY };
  for (const key of Object.keys(DEFAULT_RETRY_POLICY) as (keyof RetryPolicy)[]) {
    const value = option[key];
    if (value === undefined) continue;
    if (
      typeof value !== "number" ||
      !(value >= 0) ||
      (key === "maxAttempts" && (!Number.isInteger(value) || value < 1))
    ) {
      throw new RangeError(`retries.${key}: ${String(value)} is not allowed`);
    }
    policy[key] = value;
  }
  return policy;
}

/**
 * The backoff ceiling before retry number `retry` (0 for the first retry):
 * `baseDelayMs * 2^retry`, at most `maxDelayMs`.
 */
export function backoffCeiling(policy: RetryPolicy, retry: number): number {
  return Math.min(policy.baseDelayMs * 2 ** Math.min(retry, 52), policy.maxDelayMs);
}

/**
 * How long to wait before retry number `retry`: a uniformly random time up to the ceiling
 * ("full jitter", so that clients that failed together do not come back together); or,
 * when the service sent `Retry-After`, that long plus a jitter of up to `baseDelayMs`
 * (never earlier than it asked).
 */
export function retryDelay(policy: RetryPolicy, retry: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) {
    return retryAfterMs + Math.random() * policy.baseDelayMs;
  }
  return Math.random() * backoffCeiling(policy, retry);
}
