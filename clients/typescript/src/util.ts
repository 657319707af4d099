/**
 * Small helpers shared by the modules: paths, timers, signals. Nothing here is specific to
 * one runtime: only what every runtime with `fetch` has.
 *
 * @module
 */

/** A monotonic clock in ms, for durations (never the wall clock, which can jump). */
export function now(): number {
  return performance.now();
}

/**
 * Lets a timer not keep the program alive by itself, where the runtime can say so (a
 * timer object with `unref`); elsewhere it changes nothing.
 */
export function unref(timer: ReturnType<typeof setTimeout>): void {
  const handle = timer as unknown as { unref?: () => void };
  if (typeof handle === "object" && handle !== null && typeof handle.unref === "function") {
    handle.unref();
  }
}

/**
 * The longest delay `setTimeout` keeps: 2^31 − 1 ms, about 24.8 days. Node.js, Deno, Bun
 * and browsers take a longer one as (about) none: the timer fires at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer of {@link startTimer}: it may run for longer than `setTimeout` allows. */
export interface Timer {
  /** When it fires, by the monotonic clock ({@link now}). */
  readonly deadline: number;
  /** Whether it has fired. */
  readonly fired: boolean;
  /** Stops it; nothing happens if it has fired already. */
  cancel(): void;
}

/**
 * How long to arm `setTimeout` for on the way to a deadline `leftMs` away: all of it, but
 * never more than `maxStepMs` (then the timer is armed again for the rest); 0 once the
 * deadline has passed (or for NaN).
 */
export function timerStep(leftMs: number, maxStepMs: number = MAX_TIMER_MS): number {
  if (!(leftMs > 0)) return 0;
  return Math.min(leftMs, maxStepMs);
}

/**
 * Calls `callback` once `ms` have passed (by the monotonic clock), however long that is:
 * `setTimeout` is armed in steps of at most `maxStepMs` (by default {@link MAX_TIMER_MS},
 * what it can keep) until the deadline, and never calls back before it. Always
 * asynchronously, also for 0 or less. With `keepAlive: false` it does not keep the program
 * alive by itself.
 */
export function startTimer(
  ms: number,
  callback: () => void,
  options: { keepAlive?: boolean; maxStepMs?: number } = {},
): Timer {
  const { keepAlive = true, maxStepMs = MAX_TIMER_MS } = options;
  const deadline = now() + Math.max(0, ms);
  let handle: ReturnType<typeof setTimeout> | undefined;
  let fired = false;
  let cancelled = false;
  const arm = (): void => {
    handle = setTimeout(fire, timerStep(deadline - now(), maxStepMs));
    if (!keepAlive) unref(handle);
  };
  const fire = (): void => {
    handle = undefined;
    if (cancelled) return;
    // A step short of the deadline (a long one, or a runtime's timer a little early).
    if (now() < deadline) {
      arm();
      return;
    }
    fired = true;
    callback();
  };
  arm();
  return {
    deadline,
    get fired() {
      return fired;
    },
    cancel() {
      cancelled = true;
      if (handle !== undefined) clearTimeout(handle);
      handle = undefined;
    },
  };
}

/**
 * Waits `ms` (however long: see {@link startTimer}); rejects with the signal's reason as
 * soon as `signal` aborts. With `keepAlive: false` the timer does not keep the program
 * alive by itself.
 */
export function sleep(ms: number, signal?: AbortSignal, keepAlive = true): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      timer.cancel();
      reject(signal?.reason);
    };
    const timer = startTimer(
      ms,
      () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      },
      { keepAlive },
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A controller that aborts when any of `signals` does (with its reason), and a function
 * that stops listening to them. (`AbortSignal.any` does the same, but not on every
 * runtime this package supports.)
 */
export function linkedController(...signals: (AbortSignal | undefined)[]): {
  controller: AbortController;
  unlink: () => void;
} {
  const controller = new AbortController();
  const links: (() => void)[] = [];
  for (const signal of signals) {
    if (signal === undefined) continue;
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    links.push(() => signal.removeEventListener("abort", onAbort));
  }
  return { controller, unlink: () => links.forEach((unlink) => unlink()) };
}

/**
 * A random UUID (version 4), for Idempotency-Keys: `crypto.randomUUID` where the runtime
 * has it, else made from `crypto.getRandomValues` (or, lacking even that, `Math.random`:
 * a key has to be unique, not secret).
 */
export function randomUuid(): string {
  const webCrypto = (globalThis as { crypto?: Partial<Crypto> }).crypto;
  if (typeof webCrypto?.randomUUID === "function") return webCrypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (typeof webCrypto?.getRandomValues === "function") {
    webCrypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40; // version 4
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // the RFC 4122 variant
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The characters of a path segment sent as they are (besides `.`, see {@link path}). */
const PLAIN = /^[A-Za-z0-9\-_~:@]$/;

/**
 * A path from its segments, each percent-encoded as one segment (so a name can never
 * reach another route, not even `..`), and a query of the parameters that are given (not
 * undefined or null).
 */
export function path(segments: string[], query: Record<string, string | number | null | undefined> = {}): string {
  const encoder = new TextEncoder();
  let out = "";
  for (const segment of segments) {
    out += "/";
    const dots = /^\.+$/.test(segment);
    for (const char of segment) {
      if (PLAIN.test(char) || (char === "." && !dots)) {
        out += char;
      } else {
        for (const byte of encoder.encode(char)) {
          out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
        }
      }
    }
  }
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) params.append(name, String(value));
  }
  const text = params.toString();
  return text === "" ? out : `${out}?${text}`;
}

/** An `If-Match` value: a version as an ETag, or an ETag as given. */
export function etag(value: number | string): string {
  return typeof value === "number" ? `"${value}"` : value;
}

/** A time for the API: an RFC 3339 string as given, or a Date as one. */
export function time(value: string | Date | undefined): string | undefined {
  return value instanceof Date ? value.toISOString() : value;
}

/** The object without its `undefined` fields (absent means "the default" to the service). */
export function defined<T extends Record<string, unknown>>(body: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [key, value] of Object.entries(body) as [keyof T, T[keyof T]][]) {
    if (value !== undefined) out[key] = value;
  }
  return out;
}
