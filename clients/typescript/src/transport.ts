/**
 * The sending core every call shares: one request, sent again while its outcome is
 * unknown or the service asks to come back later, always with the same Idempotency-Key,
 * so that the service applies a write at most once and answers every retry with the
 * first answer.
 *
 * @module
 */

import { LeaseholdError, problemCode, type Current, type ProblemBody } from "./errors.js";
import { retryDelay, type RetryPolicy } from "./retry.js";
import { linkedController, now, randomUuid, sleep, startTimer } from "./util.js";

/** The header that makes a retried write safe. */
export const IDEMPOTENCY_KEY = "Idempotency-Key";

/** An HTTP method this client sends. */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** One request to send (and perhaps send again), by path: the base URL is the transport's. */
export interface Call {
  method: Method;
  /** The path and query, already percent-encoded, starting with `/`. */
  path: string;
  /** The JSON body, encoded once so that every attempt sends the same bytes. */
  body?: unknown;
  /** The body's content type (default `application/json`). */
  contentType?: string;
  /** Extra headers (preconditions, `Last-Event-ID`, …). */
  headers?: Record<string, string>;
  /** How long one attempt may take, when not the client's `timeoutMs`. */
  timeoutMs?: number;
  /** The retry policy, when not the client's. */
  policy?: RetryPolicy;
  /**
   * Gives up the call when aborted (the attempt under way, or the wait before the next):
   * the call then throws the signal's reason.
   */
  signal?: AbortSignal;
  /** The Idempotency-Key of a write, when the caller has one (else a fresh UUID). */
  idempotencyKey?: string;
}

/** An HTTP answer, whatever its status, with its body read as text. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** What `onRetry` is told before each retry. */
export interface RetryInfo {
  method: Method;
  path: string;
  /** The number of the attempt that failed (1 for the first). */
  attempt: number;
  /** How long the client waits before the next attempt, in ms. */
  delayMs: number;
  /** The failed attempt's status (0 when there was no answer). */
  status: number;
  /** The failed attempt in a few words (`429 rate_limited`, `timeout`, …). */
  cause: string;
  /** The `Retry-After` the service sent, in ms. */
  retryAfterMs: number | undefined;
  /** The Idempotency-Key every attempt of this write carries (the next one too). */
  idempotencyKey: string | undefined;
}

/** What one attempt came back with. */
type Attempt =
  { kind: "answer"; answer: Answer } | { kind: "no_answer"; error: unknown; timedOut: boolean; timeoutMs: number };

/** The settings a {@link Transport} is made with. */
export interface TransportOptions {
  baseUrl: string;
  apiKey: string | undefined;
  timeoutMs: number;
  policy: RetryPolicy;
  fetch: typeof fetch | undefined;
  onRetry: ((info: RetryInfo) => void) | undefined;
}

/** Whether a call changes state, and so carries an Idempotency-Key. */
function isWrite(method: Method): boolean {
  return method !== "GET";
}

/** Throws unless `key` is 1 to 128 visible ASCII characters, as the service requires. */
export function checkIdempotencyKey(key: string): void {
  if (!/^[\x21-\x7e]{1,128}$/.test(key)) {
    throw new LeaseholdError({
      kind: "invalid",
      code: "invalid_request",
      field: IDEMPOTENCY_KEY,
      detail: "an Idempotency-Key is 1 to 128 visible ASCII characters",
      message: "invalid Idempotency-Key: 1 to 128 visible ASCII characters are allowed",
    });
  }
}

/**
 * A header value as this client sends one: visible ASCII characters, with spaces or tabs
 * only between them. (`fetch` refuses a CR, LF or NUL, and characters beyond Latin-1, with
 * a TypeError; the service has no use for the rest.)
 */
const HEADER_VALUE = /^[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?$/;

/**
 * Throws an `invalid` error unless `value` can be sent as the header `name` (see
 * {@link HEADER_VALUE}; an Idempotency-Key as {@link checkIdempotencyKey} says): a value
 * that `fetch` would refuse is the caller's mistake, never a reason to retry.
 */
export function checkHeader(name: string, value: string): void {
  if (name.toLowerCase() === IDEMPOTENCY_KEY.toLowerCase()) {
    checkIdempotencyKey(value);
    return;
  }
  if (typeof value !== "string" || !HEADER_VALUE.test(value)) {
    const shown = JSON.stringify(String(value)).slice(0, 80);
    throw new LeaseholdError({
      kind: "invalid",
      code: "invalid_request",
      field: name,
      detail: `${name} ${shown} is not a header value: visible ASCII characters, no CR, LF or NUL`,
      message: `invalid ${name} ${shown}: not a header value (visible ASCII, no CR, LF or NUL)`,
    });
  }
}

/**
 * An HTTP client bound to one deployment: its base URL, the API key, the per-attempt
 * timeout and the retry policy. Shared by a client and every handle made from it.
 */
export class Transport {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly policy: RetryPolicy;
  /** How many retries were made, over every call. */
  retries = 0;
  readonly #authorization: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #onRetry: ((info: RetryInfo) => void) | undefined;

  constructor(options: TransportOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch (cause) {
      throw invalid(`baseUrl ${options.baseUrl}: not a URL`, cause);
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "") {
      throw invalid(`baseUrl ${options.baseUrl}: must be http(s), without a query`);
    }
    // A path prefix (a deployment behind `/leasehold/`) is kept.
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    if (options.apiKey !== undefined && !/^[\x21-\x7e]+$/.test(options.apiKey)) {
      throw invalid("the API key is not a valid header value");
    }
    this.#authorization = options.apiKey === undefined ? undefined : `Bearer ${options.apiKey}`;
    if (!(options.timeoutMs > 0)) throw invalid(`timeoutMs must be positive, not ${options.timeoutMs}`);
    this.timeoutMs = options.timeoutMs;
    this.policy = options.policy;
    const fetcher = options.fetch ?? globalThis.fetch;
    if (typeof fetcher !== "function") throw invalid("no fetch: this runtime has no global fetch");
    // Called unbound: a browser's fetch refuses to run with another `this`.
    this.#fetch = (input, init) => fetcher(input, init);
    this.#onRetry = options.onRetry;
  }

  /**
   * Sends `call`, and again while the attempt is retryable and the policy allows: the 2xx
   * answer, or a {@link LeaseholdError} for how it failed.
   */
  send(call: Call): Promise<Answer> {
    return this.#retrying<Answer>(call, async (url, init, remainingMs) => {
      // Bounded by the call's timeout and by the time the policy has left.
      const timeoutMs = Math.max(1, Math.min(call.timeoutMs ?? this.timeoutMs, remainingMs));
      const { controller, unlink } = linkedController(call.signal);
      let timedOut = false;
      const timer = startTimer(timeoutMs, () => {
        timedOut = true;
        controller.abort(new Error(`timed out after ${timeoutMs} ms`));
      });
      try {
        const response = await this.#fetch(url, { ...init, signal: controller.signal });
        const answer = { status: response.status, headers: response.headers, text: await response.text() };
        return ok(answer.status) ? { done: answer } : { kind: "answer", answer };
      } catch (error) {
        if (call.signal?.aborted) throw call.signal.reason;
        return { kind: "no_answer", error, timedOut, timeoutMs };
      } finally {
        timer.cancel();
        unlink();
      }
    });
  }

  /**
   * Opens a streaming answer (Server-Sent Events): sends `call` as {@link Transport.send}
   * does, again while the attempt is retryable, and hands back the first 2xx response
   * with its body unread. The timeout bounds the wait for a 2xx answer's head only (its
   * body stays open until `call.signal` aborts, or it ends); any other answer is read
   * whole within it, as {@link Transport.send} reads it.
   */
  open(call: Call): Promise<Response> {
    return this.#retrying<Response>(call, async (url, init, remainingMs) => {
      const timeoutMs = Math.max(1, Math.min(call.timeoutMs ?? this.timeoutMs, remainingMs));
      const { controller, unlink } = linkedController(call.signal);
      let timedOut = false;
      const timer = startTimer(timeoutMs, () => {
        timedOut = true;
        controller.abort(new Error(`timed out after ${timeoutMs} ms`));
      });
      let handedOver = false;
      try {
        const response = await this.#fetch(url, { ...init, signal: controller.signal });
        if (ok(response.status)) {
          // The body stays tied to the call's signal: the caller ends it by aborting that.
          timer.cancel();
          handedOver = true;
          return { done: response };
        }
        // A refusal's body is read under the attempt's timeout, as any answer's is.
        const answer = { status: response.status, headers: response.headers, text: await response.text() };
        return { kind: "answer", answer };
      } catch (error) {
        if (call.signal?.aborted) throw call.signal.reason;
        return { kind: "no_answer", error, timedOut, timeoutMs };
      } finally {
        timer.cancel();
        if (!handedOver) unlink();
      }
    });
  }

  /**
   * The retry loop under every request: `attempt` sends the request it is given (with the
   * time the policy has left) and either ends the loop (`done`) or hands back what it got,
   * which is tried again while it is retryable and the policy allows.
   */
  async #retrying<T>(
    call: Call,
    attempt: (url: string, init: RequestInit, remainingMs: number) => Promise<{ done: T } | Attempt>,
  ): Promise<T> {
    const policy = call.policy ?? this.policy;
    const started = now();
    const key = isWrite(call.method) ? (call.idempotencyKey ?? randomUuid()) : undefined;
    const headers: Record<string, string> = { Accept: "application/json", ...call.headers };
    if (this.#authorization !== undefined) headers["Authorization"] = this.#authorization;
    if (key !== undefined) headers[IDEMPOTENCY_KEY] = key;
    let body: string | undefined;
    if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers["Content-Type"] = call.contentType ?? "application/json";
    }
    // A header `fetch` would refuse is the caller's mistake: refused before anything is
    // sent, never retried as if there had been no answer.
    for (const [name, value] of Object.entries(headers)) checkHeader(name, value);
    if (call.signal?.aborted) throw call.signal.reason;
    const url = this.baseUrl + call.path;
    const init: RequestInit = { method: call.method, headers, ...(body === undefined ? {} : { body }) };

    let attempts = 0;
    let earlierUnknown = false;
    for (;;) {
      const remainingMs = policy.maxElapsedMs - (now() - started);
      const result = await attempt(url, init, remainingMs);
      attempts += 1;
      if ("done" in result) return result.done;

      const failed = (gaveUp: boolean): LeaseholdError =>
        failure(result, { attempts, elapsedMs: now() - started, gaveUp, earlierUnknown, key });
      if (!isRetryable(result)) throw failed(false);
      // Out of attempts: given up on. An answer that asks to come back later (429,
      // 502–504) is never a refusal, even when the policy never retries; without an answer,
      // a policy that never retries has nothing to give up on (`no_answer`).
      if (attempts >= policy.maxAttempts) throw failed(policy.maxAttempts > 1 || result.kind === "answer");
      const retryAfterMs = result.kind === "answer" ? retryAfter(result.answer.headers) : undefined;
      const delayMs = retryDelay(policy, attempts - 1, retryAfterMs);
      if (now() - started + delayMs >= policy.maxElapsedMs) throw failed(true);
      earlierUnknown ||= isUnknown(result);
      this.retries += 1;
      this.#onRetry?.({
        method: call.method,
        path: call.path,
        attempt: attempts,
        delayMs,
        status: result.kind === "answer" ? result.answer.status : 0,
        cause: describe(result),
        retryAfterMs,
        idempotencyKey: key,
      });
      await sleep(delayMs, call.signal);
    }
  }
}

function ok(status: number): boolean {
  return status >= 200 && status < 300;
}

/**
 * Whether sending again may help: no answer, or 429, 502, 503, 504 (the service, or a
 * load balancer in front of it, could not take the request now). Never another 4xx: the
 * same request would be refused again.
 */
function isRetryable(attempt: Attempt): boolean {
  if (attempt.kind === "no_answer") return true;
  return [429, 502, 503, 504].includes(attempt.answer.status);
}

/**
 * Whether a write may have been applied although this attempt does not say so: no
 * answer, or a 5xx. (A 429 is answered before anything is done.)
 */
function isUnknown(attempt: Attempt): boolean {
  return attempt.kind === "no_answer" || attempt.answer.status >= 500;
}

/** `Retry-After` in ms: delay-seconds (what Leasehold sends), or an HTTP date. */
function retryAfter(headers: Headers): number | undefined {
  const value = headers.get("retry-after")?.trim();
  if (value === undefined || value === "") return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** An attempt in a few words, for `onRetry` and messages. */
function describe(attempt: Attempt): string {
  if (attempt.kind === "no_answer") {
    return attempt.timedOut ? `timeout after ${attempt.timeoutMs} ms` : `no answer: ${causeText(attempt.error)}`;
  }
  const code = readProblem(attempt.answer.text)?.code;
  return code === undefined ? String(attempt.answer.status) : `${attempt.answer.status} ${code}`;
}

function causeText(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}

/** A problem+json body, if `text` is one. */
function readProblem(text: string): ProblemBody | undefined {
  try {
    const body: unknown = JSON.parse(text);
    if (
      typeof body === "object" &&
      body !== null &&
      !Array.isArray(body) &&
      typeof (body as ProblemBody).code === "string"
    ) {
      return body as ProblemBody;
    }
  } catch {
    // Not JSON: a load balancer's page, say.
  }
  return undefined;
}

/** The error a request amounts to that the retry loop has finished with. */
function failure(
  attempt: Attempt,
  how: { attempts: number; elapsedMs: number; gaveUp: boolean; earlierUnknown: boolean; key: string | undefined },
): LeaseholdError {
  const outcomeUnknown = isUnknown(attempt) || (how.gaveUp && how.earlierUnknown);
  const common = {
    outcomeUnknown,
    attempts: how.attempts,
    elapsedMs: how.elapsedMs,
    idempotencyKey: how.key,
  };
  const prefix = how.gaveUp
    ? `gave up after ${how.attempts} attempt${how.attempts === 1 ? "" : "s"} in ${Math.round(how.elapsedMs)} ms: `
    : "";
  const kind = how.gaveUp ? "gave_up" : attempt.kind === "answer" ? "problem" : "no_answer";
  if (attempt.kind === "no_answer") {
    const detail = describe(attempt);
    return new LeaseholdError({
      ...common,
      kind,
      detail,
      message: `${prefix}no answer from Leasehold: ${detail}`,
      cause: attempt.error,
    });
  }
  const { answer } = attempt;
  const problem = readProblem(answer.text);
  const code = problemCode(problem?.code);
  const detail = problem?.detail ?? answer.text.slice(0, 200);
  const field = problem?.field;
  let message = `${answer.status} ${problem?.code ?? "unknown"}`;
  if (field !== undefined) message += ` (${field})`;
  if (detail !== "") message += `: ${detail}`;
  return new LeaseholdError({
    ...common,
    kind,
    status: answer.status,
    code,
    detail,
    field,
    current: problem?.current as Current | undefined,
    limit: problem?.limit,
    quota: problem?.quota,
    usage: problem?.usage,
    retryAfterMs: retryAfter(answer.headers),
    requestId: answer.headers.get("x-request-id") ?? undefined,
    problem,
    message: prefix + message,
  });
}

/** A 2xx answer's JSON body as `T`; a body this client cannot read is `unexpected`. */
export function decode<T>(answer: Answer): T {
  try {
    return JSON.parse(answer.text) as T;
  } catch (cause) {
    throw new LeaseholdError({
      kind: "unexpected",
      status: answer.status,
      detail: `not JSON: ${answer.text.slice(0, 200)}`,
      message: `unexpected answer (${answer.status}): not JSON`,
      cause,
    });
  }
}

/** Whether the service replayed a stored answer (`Idempotent-Replayed: true`). */
export function replayed(answer: Answer): boolean {
  return answer.headers.get("idempotent-replayed") === "true";
}

function invalid(message: string, cause?: unknown): LeaseholdError {
  return new LeaseholdError({ kind: "invalid", detail: message, message, cause });
}
