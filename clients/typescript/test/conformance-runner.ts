/**
 * The runner of the conformance suite (clients/conformance/README.md): runs a scenario's
 * steps through this client's own methods and reports it passed, or failed at a step
 * (its index and op) and why.
 */

import { randomBytes } from "node:crypto";

import { Client, Lease, LeaseholdError } from "leasehold-client";

/** A scenario file. */
export interface Scenario {
  name: string;
  about?: string;
  steps: Step[];
}

/** One step of a scenario. */
export interface Step {
  op?: string;
  args?: Record<string, unknown>;
  idempotency_key?: string;
  expect?: { result?: unknown; error?: unknown };
  save?: string;
  concurrently?: Step[];
  times?: number;
  together?: Together;
}

/** Checks over all the outcomes of a concurrent step. */
export interface Together {
  ok?: number;
  errors?: Record<string, number>;
  collect?: { path: string; count?: number; distinct?: boolean; range?: [number, number] };
}

/** How a scenario went. */
export interface Report {
  name: string;
  passed: boolean;
  /** Where it failed: the step's index in `steps` and its op. */
  step?: number;
  op?: string;
  why?: string;
  /**
   * Why it failed: `mismatch`, an answer that is not what was expected (what a runner is
   * for); `scenario`, the scenario could not be run as written (an unknown op or
   * argument, a reference to nothing).
   */
  kind?: "mismatch" | "scenario";
}

/** An answer that is not what the step expects: the scenario fails. */
class Mismatch extends Error {}

/** A fault of the scenario itself (a reference to nothing, an unknown op): it fails too. */
class ScenarioError extends Error {}

/** What one call came back with: its canonical JSON and the client's own object, or the error. */
type Outcome = { ok: true; canonical: unknown; object: unknown } | { ok: false; error: LeaseholdError };

/** What a step saved: the canonical JSON (for references and matching) and the objects. */
interface Saved {
  canonical: unknown;
  object: unknown;
}

/** The keys of an object that, alone, make it a matcher. */
const MATCHERS = new Set(["$type", "$len", "$prefix", "$regex", "$gt", "$ge", "$ne"]);

/** A reference: `$name` or `$name.path`. */
const REFERENCE = /^\$([A-Za-z_][A-Za-z0-9_-]*)((?:\.[^.]+)*)$/;

/** The arguments each op takes (anything else fails the scenario). */
const ARGS: Record<string, string[]> = {
  put_pool: ["pool", "settings"],
  get_pool: ["pool"],
  list_pools: ["limit", "after"],
  delete_pool: ["pool"],
  add_items: ["pool", "items"],
  get_item: ["pool", "id"],
  put_item: ["pool", "id", "data", "priority", "if_match", "if_none_match", "expected_version", "lease_token"],
  patch_item: ["pool", "id", "patch", "if_match"],
  delete_item: ["pool", "id", "if_match"],
  list_items: ["pool", "state", "holder", "limit", "cursor"],
  claim_next: ["pool", "holder", "count", "lease_ms", "wait_ms", "create"],
  claim_item: ["pool", "id", "holder", "lease_ms"],
  renew: ["lease", "lease_ms"],
  release: ["lease", "delay_ms", "priority"],
  complete: ["lease", "data"],
  assign_item: ["pool", "id", "holder", "expected_version", "if_match", "lease_ms"],
  requeue_item: ["pool", "id", "priority", "delay_ms", "available_at"],
  list_leases: ["pool", "holder", "limit", "cursor"],
  next_counter: ["name", "count", "period", "tz", "format"],
  get_counter: ["name", "period", "tz"],
  list_events: ["pool", "after", "limit"],
};

/** Runs one scenario with a fresh run id against the service `client` talks to. */
export async function runScenario(client: Client, scenario: Scenario): Promise<Report> {
  return new Run(client, randomBytes(4).toString("hex")).scenario(scenario);
}

class Run {
  readonly #client: Client;
  readonly #run: string;
  readonly #saved = new Map<string, Saved>();
  /** Every lease guard made, stopped when the scenario ends (nothing is released). */
  readonly #leases: Lease[] = [];

  constructor(client: Client, run: string) {
    this.#client = client;
    this.#run = run;
  }

  async scenario(scenario: Scenario): Promise<Report> {
    const name = scenario.name;
    try {
      if (!Array.isArray(scenario.steps)) return { name, passed: false, why: "the scenario has no steps" };
      for (const [index, step] of scenario.steps.entries()) {
        const op = step.op ?? (step.concurrently ? "concurrently" : "?");
        try {
          await this.#step(step);
        } catch (error) {
          const why = error instanceof Error ? error.message : String(error);
          return {
            name,
            passed: false,
            step: index,
            op,
            why,
            kind: error instanceof Mismatch ? "mismatch" : "scenario",
          };
        }
      }
      return { name, passed: true };
    } finally {
      for (const lease of this.#leases) lease.stop();
    }
  }

  async #step(step: Step): Promise<void> {
    if (step.concurrently !== undefined || step.times !== undefined) {
      await this.#concurrent(step);
      return;
    }
    if (step.op === undefined) throw new ScenarioError("a step without op");
    const outcome = await this.#call(step);
    if (step.save !== undefined) {
      this.#saved.set(
        step.save,
        outcome.ok ? { canonical: outcome.canonical, object: outcome.object } : { canonical: null, object: null },
      );
    }
    this.#expect(step.expect, outcome, "");
  }

  async #concurrent(step: Step): Promise<void> {
    let steps: Step[];
    if (step.concurrently !== undefined) {
      steps = step.concurrently;
    } else {
      if (step.op === undefined) throw new ScenarioError("`times` without op");
      const one: Step = { op: step.op };
      if (step.args !== undefined) one.args = step.args;
      if (step.idempotency_key !== undefined) one.idempotency_key = step.idempotency_key;
      steps = Array.from({ length: step.times ?? 0 }, () => one);
    }
    // Arguments are resolved before any starts, so that all start together.
    const prepared = steps.map((s) => this.#prepare(s));
    const outcomes = await Promise.all(prepared.map((start) => start()));
    if (step.save !== undefined) {
      this.#saved.set(step.save, {
        canonical: outcomes.map((o) => (o.ok ? o.canonical : null)),
        object: outcomes.map((o) => (o.ok ? o.object : null)),
      });
    }
    // Without `expect`, each call must succeed, unless `together` counts the failures.
    if (step.expect !== undefined || step.together === undefined) {
      outcomes.forEach((outcome, i) => this.#expect(step.expect, outcome, `outcome ${i}: `));
    }
    if (step.together !== undefined) this.#together(step.together, outcomes);
  }

  /** Checks `expect` (or, without it, that the call succeeded). */
  #expect(expect: Step["expect"], outcome: Outcome, prefix: string): void {
    if (expect === undefined || (expect.result === undefined && expect.error === undefined)) {
      if (!outcome.ok) throw new Mismatch(`${prefix}the call failed: ${outcome.error.message}`);
      return;
    }
    if (expect.error !== undefined) {
      if (outcome.ok) {
        throw new Mismatch(`${prefix}expected an error, got ${JSON.stringify(outcome.canonical)}`);
      }
      const canonical = {
        status: outcome.error.status,
        code: outcome.error.code,
        detail: outcome.error.detail,
        current: outcome.error.current ?? null,
      };
      const why = this.#match(this.#substitute(expect.error), canonical, "error");
      if (why !== undefined) throw new Mismatch(`${prefix}${why} (the error: ${JSON.stringify(canonical)})`);
      return;
    }
    if (!outcome.ok) throw new Mismatch(`${prefix}expected success, the call failed: ${outcome.error.message}`);
    const why = this.#match(this.#substitute(expect.result), outcome.canonical, "result");
    if (why !== undefined) throw new Mismatch(`${prefix}${why} (the answer: ${JSON.stringify(outcome.canonical)})`);
  }

  #together(together: Together, outcomes: Outcome[]): void {
    const ok = outcomes.filter((o) => o.ok);
    if (together.ok !== undefined && ok.length !== together.ok) {
      throw new Mismatch(`together: ${ok.length} succeeded, expected ${together.ok}`);
    }
    const counted: Record<string, number> = {};
    for (const o of outcomes) if (!o.ok) counted[o.error.code] = (counted[o.error.code] ?? 0) + 1;
    const expected = together.errors ?? {};
    for (const code of new Set([...Object.keys(counted), ...Object.keys(expected)])) {
      if ((counted[code] ?? 0) !== (expected[code] ?? 0)) {
        throw new Mismatch(`together: errors ${JSON.stringify(counted)}, expected ${JSON.stringify(expected)}`);
      }
    }
    if (together.collect !== undefined) {
      const { path, count, distinct, range } = together.collect;
      const values: unknown[] = [];
      const add = (value: unknown): void => {
        if (Array.isArray(value)) values.push(...value);
        else if (value !== undefined) values.push(value);
      };
      for (const o of ok) {
        if (!o.ok) continue;
        if (Array.isArray(o.canonical)) o.canonical.forEach((element) => add(walk(element, path)));
        else add(walk(o.canonical, path));
      }
      const shown = JSON.stringify(values);
      if (count !== undefined && values.length !== count) {
        throw new Mismatch(`together: collected ${values.length} values at ${path}, expected ${count}: ${shown}`);
      }
      if (distinct === true && new Set(values.map((v) => JSON.stringify(v))).size !== values.length) {
        throw new Mismatch(`together: the values at ${path} are not distinct: ${shown}`);
      }
      if (range !== undefined) {
        const [a, b] = range;
        const sorted = [...values].sort((x, y) => Number(x) - Number(y));
        const want = Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => a + i);
        if (JSON.stringify(sorted) !== JSON.stringify(want)) {
          throw new Mismatch(
            `together: the values at ${path} sorted are ${JSON.stringify(sorted)}, expected ${a}..${b}`,
          );
        }
      }
    }
  }

  /** Runs one call (its arguments resolved now). */
  #call(step: Step): Promise<Outcome> {
    return this.#prepare(step)();
  }

  /**
   * Resolves a step's arguments now and hands back what starts its call; the call's
   * failure with a Leasehold error is an outcome, any other fails the scenario.
   */
  #prepare(step: Step): () => Promise<Outcome> {
    const op = step.op;
    if (op === undefined || !(op in ARGS)) throw new ScenarioError(`unknown op ${String(op)}`);
    const raw = step.args ?? {};
    for (const key of Object.keys(raw)) {
      if (!ARGS[op]?.includes(key)) throw new ScenarioError(`${op} takes no argument ${key}`);
    }
    // A lease argument is the client's own object (resolved from the saved objects).
    const lease = op === "renew" || op === "release" || op === "complete" ? this.#leaseArg(raw["lease"]) : undefined;
    const args = this.#resolve(
      this.#substitute(Object.fromEntries(Object.entries(raw).filter(([k]) => k !== "lease"))),
    ) as Record<string, unknown>;
    const client =
      step.idempotency_key === undefined
        ? this.#client
        : this.#client.withIdempotencyKey(this.#substitute(step.idempotency_key) as string);
    return async () => {
      try {
        const [canonical, object] = await this.#invoke(client, op, args, lease);
        return { ok: true, canonical: JSON.parse(JSON.stringify(canonical ?? null)) as unknown, object };
      } catch (error) {
        if (error instanceof LeaseholdError && error.kind !== "invalid") return { ok: false, error };
        throw error;
      }
    };
  }

  /** The lease guard a `lease` argument refers to (a saved `claim_item`, or one of a `claim_next`'s). */
  #leaseArg(ref: unknown): Lease {
    if (typeof ref !== "string" || !REFERENCE.test(ref)) throw new ScenarioError("lease must be a reference");
    const [, name = "", path = ""] = REFERENCE.exec(ref) ?? [];
    const saved = this.#saved.get(name);
    if (saved === undefined) throw new ScenarioError(`${ref}: nothing was saved as ${name}`);
    const object = walk(saved.object, path.replace(/^\./, ""));
    if (object instanceof Lease) return object;
    throw new ScenarioError(`${ref} is not a lease this client granted`);
  }

  async #invoke(
    c: Client,
    op: string,
    a: Record<string, unknown>,
    guard: Lease | undefined,
  ): Promise<[unknown, unknown]> {
    const s = (key: string): string => a[key] as string;
    const n = (key: string): number | undefined => a[key] as number | undefined;
    const o = (key: string): string | undefined => a[key] as string | undefined;
    switch (op) {
      case "put_pool":
        return [await c.putPool(s("pool"), camel((a["settings"] ?? {}) as Record<string, unknown>)), undefined];
      case "get_pool":
        return [await c.getPool(s("pool")), undefined];
      case "list_pools":
        return [await c.listPools(defined({ limit: n("limit"), after: o("after") })), undefined];
      case "delete_pool":
        await c.deletePool(s("pool"));
        return [null, undefined];
      case "add_items": {
        const items = (a["items"] as Record<string, unknown>[]).map((item) => camel(item));
        return [await c.addItems(s("pool"), items as never), undefined];
      }
      case "get_item":
        return [await c.getItem(s("pool"), s("id")), undefined];
      case "put_item": {
        const options = defined({
          priority: n("priority"),
          ifMatch: o("if_match"),
          ifNoneMatch: o("if_none_match") as "*" | undefined,
          expectedVersion: n("expected_version"),
          leaseToken: n("lease_token"),
        });
        return [(await c.putItem(s("pool"), s("id"), a["data"] as object, options)).item, undefined];
      }
      case "patch_item":
        return [
          (await c.patchItem(s("pool"), s("id"), a["patch"] as object, defined({ ifMatch: o("if_match") }))).item,
          undefined,
        ];
      case "delete_item":
        await c.deleteItem(s("pool"), s("id"), defined({ ifMatch: o("if_match") }));
        return [null, undefined];
      case "list_items":
        return [
          await c.listItems(
            s("pool"),
            defined({ state: a["state"] as never, holder: o("holder"), limit: n("limit"), cursor: o("cursor") }),
          ),
          undefined,
        ];
      case "claim_next": {
        const leases = await c.claimNext(
          s("pool"),
          defined({
            holder: s("holder"),
            count: n("count"),
            leaseMs: n("lease_ms"),
            waitMs: n("wait_ms"),
            create: a["create"] as boolean | undefined,
          }) as { holder: string },
        );
        this.#leases.push(...leases);
        return [leases.map((l) => l.toJSON()), leases];
      }
      case "claim_item": {
        const claimed = await c.claimItem(
          s("pool"),
          s("id"),
          defined({ holder: s("holder"), leaseMs: n("lease_ms") }) as { holder: string },
        );
        this.#leases.push(claimed);
        return [claimed.toJSON(), claimed];
      }
      case "renew":
      case "release":
      case "complete": {
        if (guard === undefined) throw new ScenarioError(`${op} needs a lease`);
        // The guard itself while it can be used; once it was completed or released, the
        // lower-level call with its id, holder and token.
        if (!guard.settled) {
          if (op === "renew") return [await guard.renew(defined({ leaseMs: n("lease_ms") })), undefined];
          if (op === "release")
            return [await guard.release(defined({ delayMs: n("delay_ms"), priority: n("priority") })), undefined];
          return [await guard.complete(a["data"] as object | undefined), undefined];
        }
        const ref = { pool: guard.pool, id: guard.id };
        const who = { holder: guard.holder, token: guard.token };
        if (op === "renew")
          return [await c.renew(ref.pool, ref.id, { ...who, ...defined({ leaseMs: n("lease_ms") }) }), undefined];
        if (op === "release") {
          return [
            await c.release(ref.pool, ref.id, {
              ...who,
              ...defined({ delayMs: n("delay_ms"), priority: n("priority") }),
            }),
            undefined,
          ];
        }
        return [
          await c.complete(ref.pool, ref.id, { ...who, ...defined({ data: a["data"] as object | undefined }) }),
          undefined,
        ];
      }
      case "assign_item":
        return [
          await c.assignItem(
            s("pool"),
            s("id"),
            a["holder"] as string | null,
            defined({ expectedVersion: n("expected_version"), ifMatch: o("if_match"), leaseMs: n("lease_ms") }),
          ),
          undefined,
        ];
      case "requeue_item":
        return [
          await c.requeueItem(
            s("pool"),
            s("id"),
            defined({ priority: n("priority"), delayMs: n("delay_ms"), availableAt: o("available_at") }),
          ),
          undefined,
        ];
      case "list_leases":
        return [
          await c.listLeases(s("pool"), s("holder"), defined({ limit: n("limit"), cursor: o("cursor") })),
          undefined,
        ];
      case "next_counter":
        return [
          await c.nextCounter(
            s("name"),
            defined({
              count: n("count"),
              period: a["period"] as "day" | "none" | undefined,
              tz: o("tz"),
              format: o("format"),
            }),
          ),
          undefined,
        ];
      case "get_counter":
        return [await c.getCounter(s("name"), defined({ period: o("period"), tz: o("tz") })), undefined];
      case "list_events":
        return [await c.listEvents(s("pool"), defined({ after: o("after"), limit: n("limit") })), undefined];
      default:
        throw new ScenarioError(`unknown op ${op}`);
    }
  }

  /** `{run}` replaced with the run id in every string (keys are left alone). */
  #substitute(value: unknown): unknown {
    if (typeof value === "string") return value.split("{run}").join(this.#run);
    if (Array.isArray(value)) return value.map((v) => this.#substitute(v));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.#substitute(v)]));
    }
    return value;
  }

  /** Every reference in `value` replaced by what it refers to (for arguments). */
  #resolve(value: unknown): unknown {
    if (typeof value === "string" && REFERENCE.test(value)) return this.#lookup(value, "canonical");
    if (Array.isArray(value)) return value.map((v) => this.#resolve(v));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.#resolve(v)]));
    }
    return value;
  }

  /** What a reference refers to; a reference to nothing fails the scenario. */
  #lookup(ref: string, what: keyof Saved): unknown {
    const [, name = "", path = ""] = REFERENCE.exec(ref) ?? [];
    const saved = this.#saved.get(name);
    if (saved === undefined) throw new ScenarioError(`${ref}: nothing was saved as ${name}`);
    const value = walk(saved[what], path.replace(/^\./, ""));
    if (value === undefined) throw new ScenarioError(`${ref}: there is nothing there`);
    return value;
  }

  /** Why `value` does not match `pattern`, or undefined when it does. */
  #match(pattern: unknown, value: unknown, at: string): string | undefined {
    if (typeof pattern === "string" && REFERENCE.test(pattern)) {
      return this.#match(this.#lookup(pattern, "canonical"), value, at);
    }
    if (pattern === null || typeof pattern !== "object") {
      const actual = value === undefined ? null : value;
      return pattern === actual
        ? undefined
        : `${at}: expected ${JSON.stringify(pattern)}, got ${JSON.stringify(actual)}`;
    }
    if (Array.isArray(pattern)) {
      if (!Array.isArray(value)) return `${at}: expected a list, got ${JSON.stringify(value ?? null)}`;
      if (value.length !== pattern.length) return `${at}: expected ${pattern.length} elements, got ${value.length}`;
      for (const [i, element] of pattern.entries()) {
        const why = this.#match(element, value[i], `${at}.${i}`);
        if (why !== undefined) return why;
      }
      return undefined;
    }
    const keys = Object.keys(pattern);
    const only = keys[0];
    if (keys.length === 1 && only !== undefined && MATCHERS.has(only)) {
      return this.#matcher(only, (pattern as Record<string, unknown>)[only], value, at);
    }
    if (value === null || value === undefined || typeof value !== "object" || Array.isArray(value)) {
      return `${at}: expected an object, got ${JSON.stringify(value ?? null)}`;
    }
    for (const key of keys) {
      const why = this.#match(
        (pattern as Record<string, unknown>)[key],
        (value as Record<string, unknown>)[key],
        `${at}.${key}`,
      );
      if (why !== undefined) return why;
    }
    return undefined;
  }

  #matcher(kind: string, arg: unknown, value: unknown, at: string): string | undefined {
    const shown = JSON.stringify(value ?? null);
    const fail = (what: string): string => `${at}: expected ${what}, got ${shown}`;
    switch (kind) {
      case "$type": {
        const is =
          arg === "string"
            ? typeof value === "string"
            : arg === "number"
              ? typeof value === "number"
              : arg === "integer"
                ? Number.isInteger(value)
                : arg === "boolean"
                  ? typeof value === "boolean"
                  : arg === "null"
                    ? value === null || value === undefined
                    : arg === "object"
                      ? value !== null && typeof value === "object" && !Array.isArray(value)
                      : arg === "array"
                        ? Array.isArray(value)
                        : undefined;
        if (is === undefined) throw new ScenarioError(`unknown $type ${String(arg)}`);
        return is ? undefined : fail(`a value of type ${String(arg)}`);
      }
      case "$len":
        return (Array.isArray(value) || typeof value === "string") && value.length === arg
          ? undefined
          : fail(`length ${String(arg)}`);
      case "$prefix": {
        if (!Array.isArray(arg)) throw new ScenarioError("$prefix takes a list");
        if (!Array.isArray(value) || value.length < arg.length)
          return fail(`a list starting with ${arg.length} given elements`);
        for (const [i, element] of arg.entries()) {
          const why = this.#match(element, value[i], `${at}.${i}`);
          if (why !== undefined) return why;
        }
        return undefined;
      }
      case "$regex":
        return typeof value === "string" && new RegExp(String(arg)).test(value)
          ? undefined
          : fail(`a string matching /${String(arg)}/`);
      case "$gt":
      case "$ge": {
        const bound = typeof arg === "string" && REFERENCE.test(arg) ? this.#lookup(arg, "canonical") : arg;
        if (typeof bound !== "number") throw new ScenarioError(`${kind} takes a number, not ${JSON.stringify(bound)}`);
        const holds = typeof value === "number" && (kind === "$gt" ? value > bound : value >= bound);
        return holds ? undefined : fail(`a number ${kind === "$gt" ? ">" : ">="} ${bound}`);
      }
      case "$ne":
        return this.#match(arg, value, at) === undefined ? fail(`anything but ${JSON.stringify(arg)}`) : undefined;
      default:
        throw new ScenarioError(`unknown matcher ${kind}`);
    }
  }
}

/** The value at a dot-separated path of keys and indexes (undefined where there is none). */
function walk(value: unknown, path: string): unknown {
  if (path === "") return value;
  let here: unknown = value;
  for (const part of path.split(".")) {
    if (Array.isArray(here) && /^\d+$/.test(part)) here = here[Number(part)];
    else if (here !== null && typeof here === "object" && !Array.isArray(here))
      here = (here as Record<string, unknown>)[part];
    else return undefined;
  }
  return here;
}

/** An object's snake_case keys in camelCase (one level: data inside is left as it is). */
function camel(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(object).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
  );
}

/** The object without its undefined fields. */
function defined<T extends Record<string, unknown>>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as T;
}
