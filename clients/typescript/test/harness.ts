/**
 * What the tests share: a real `leasehold dev` (started from the binary in LEASEHOLD_BIN,
 * on a free port, with a fresh data directory, and stopped by its process id), bounded
 * polling for conditions, and small helpers.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package's own directory (clients/typescript), wherever the compiled tests run from. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "leasehold-client") return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("the leasehold-client package.json was not found above the tests");
    dir = parent;
  }
}

/** The server binary: LEASEHOLD_BIN, or the workspace's debug build. */
export function leaseholdBin(): string {
  return process.env["LEASEHOLD_BIN"] ?? resolve(packageRoot(), "../../target/debug/leasehold");
}

/** A run id: 8 lowercase hex characters, so tests never meet each other's pools. */
export function runId(): string {
  return randomBytes(4).toString("hex");
}

/** A `leasehold dev` this test process started. */
export interface Dev {
  /** Its base URL, `http://127.0.0.1:PORT`. */
  url: string;
  /** The server's process id. */
  pid: number;
  /** Stops it (SIGTERM, which also stops its Redis), waits for it, removes its data. */
  stop(): Promise<void>;
  /** Stops the server's process from running (SIGSTOP): it answers nothing meanwhile. */
  pause(): void;
  /** Lets it run again (SIGCONT). */
  resume(): void;
  /** The process id of the redis-server it started (Linux only: from /proc). */
  redisPid(): number | undefined;
  /** The last lines it wrote, for failure messages. */
  output(): string;
}

/** Every dev still running, stopped at exit even when a test failed before stopping it. */
const running = new Set<{ child: ChildProcess; redis: () => number | undefined }>();
process.on("exit", () => {
  for (const { child, redis } of running) {
    const redisPid = redis();
    try {
      child.kill("SIGCONT");
      child.kill("SIGTERM");
    } catch {
      // Gone already.
    }
    if (redisPid !== undefined) {
      try {
        process.kill(redisPid, "SIGCONT");
        process.kill(redisPid, "SIGTERM");
      } catch {
        // Gone already.
      }
    }
  }
});

/** The child processes of `pid`, from /proc (empty where there is none). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (text !== "") out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // Not Linux, or the process is gone.
  }
  return out;
}

/**
 * Starts `leasehold dev` on a free port with a fresh data directory (and `extra` flags),
 * and resolves once it says where it listens and `GET /readyz` answers 200.
 */
export async function startDev(extra: string[] = []): Promise<Dev> {
  const dataDir = mkdtempSync(join(tmpdir(), "leasehold-ts-"));
  const child = spawn(leaseholdBin(), ["dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir, ...extra], {
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let redis: number | undefined;
  const findRedis = (): number | undefined => {
    if (redis === undefined && child.pid !== undefined) {
      redis = childrenOf(child.pid).find((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("redis-server");
        } catch {
          return false;
        }
      });
    }
    return redis;
  };
  const entry = { child, redis: findRedis };
  running.add(entry);
  const exited = new Promise<void>((done) => child.once("exit", () => done()));

  const url = await new Promise<string>((found, failed) => {
    const timer = setTimeout(
      () => failed(new Error(`leasehold dev did not say where it listens:\n${lines.join("\n")}`)),
      20_000,
    );
    const read = (chunk: Buffer): void => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line === "") continue;
        lines.push(line);
        if (lines.length > 200) lines.shift();
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          found(match[1]);
        }
      }
    };
    // Both pipes are read for as long as it runs, so that it never blocks on a full one.
    child.stdout?.on("data", read);
    child.stderr?.on("data", read);
    child.once("error", (error) => {
      clearTimeout(timer);
      failed(error);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      failed(new Error(`leasehold dev exited (${code ?? signal}) before listening:\n${lines.join("\n")}`));
    });
  }).catch((error: unknown) => {
    running.delete(entry);
    child.kill("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  });

  const dev: Dev = {
    url,
    pid: child.pid ?? 0,
    async stop() {
      findRedis();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGCONT");
        child.kill("SIGTERM");
        let timer: NodeJS.Timeout | undefined;
        const stopped = await Promise.race([
          exited.then(() => true),
          new Promise<boolean>((done) => {
            timer = setTimeout(() => done(false), 10_000);
          }),
        ]);
        clearTimeout(timer);
        if (!stopped) child.kill("SIGKILL");
        await exited;
      }
      // Its Redis stops with it; should it not have, stop it too.
      if (redis !== undefined && isAlive(redis)) {
        process.kill(redis, "SIGCONT");
        process.kill(redis, "SIGTERM");
        await waitFor("redis-server to stop", () => !isAlive(redis!), { timeoutMs: 10_000 });
      }
      running.delete(entry);
      rmSync(dataDir, { recursive: true, force: true });
    },
    pause() {
      child.kill("SIGSTOP");
    },
    resume() {
      child.kill("SIGCONT");
    },
    redisPid: findRedis,
    output: () => lines.join("\n"),
  };
  try {
    await waitFor(
      "GET /readyz to answer 200",
      async () => {
        try {
          return (await fetch(`${url}/readyz`)).status === 200;
        } catch {
          return false;
        }
      },
      { timeoutMs: 20_000 },
    );
    findRedis();
  } catch (error) {
    await dev.stop();
    throw error;
  }
  return dev;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie (exited, not yet reaped by its parent) counts as gone.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/**
 * The server the conformance suite runs against: LEASEHOLD_URL if set (stopping it does
 * nothing), else a new dev.
 */
export async function server(): Promise<{ url: string; stop(): Promise<void> }> {
  const given = process.env["LEASEHOLD_URL"];
  if (given !== undefined && given !== "") {
    return { url: given.replace(/\/+$/, ""), stop: async () => undefined };
  }
  const dev = await startDev();
  return { url: dev.url, stop: () => dev.stop() };
}

export function delay(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/**
 * Polls `check` until it returns something other than `false`/`undefined` (that value),
 * failing after `timeoutMs`: for conditions that come about in their own time.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | false | undefined | Promise<T | false | undefined>,
  { timeoutMs = 10_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== false && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(intervalMs);
  }
}

/** Resolves when `signal` aborts (with its reason); rejects after `timeoutMs`. */
export function aborted(signal: AbortSignal, timeoutMs: number, what = "the signal"): Promise<unknown> {
  return new Promise((done, failed) => {
    if (signal.aborted) return done(signal.reason);
    const timer = setTimeout(() => failed(new Error(`${what} did not fire within ${timeoutMs} ms`)), timeoutMs);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        done(signal.reason);
      },
      { once: true },
    );
  });
}

/** The error a promise rejects with (failing if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail, and it succeeded");
}
