/**
 * A worker loop: wait for work with a long-poll claim, do it under the lease guard (which
 * renews the lease while the work runs), complete it, and go on until stopped.
 *
 * Run it on its own (LEASEHOLD_URL, POOL, HOLDER in the environment; Ctrl-C stops it):
 *
 *     node worker.js
 *
 * or call `runWorker` with a handler of your own.
 */

import { pathToFileURL } from "node:url";

import { Client, LeaseholdError, type JsonObject, type Lease } from "leasehold-client";

/** What the handler of one item is given. */
export interface Job {
  id: string;
  data: JsonObject;
  /** The fencing token: pass it to downstream systems with the work's writes. */
  token: number;
  /** Aborts when the lease is lost, or the worker is stopped: stop working then. */
  signal: AbortSignal;
}

export interface WorkerOptions {
  holder: string;
  /** Stops the loop: the wait for work ends at once, and the item in hand is released. */
  signal: AbortSignal;
  /** Does the work; what it answers becomes the item's data on completion (if an object). */
  handle: (job: Job) => Promise<object | void>;
  /** The lease time while an item is worked on (renewed at a third of it). Default 30 s. */
  leaseMs?: number;
  /** How long one claim waits for work. Default 20 s. */
  waitMs?: number;
}

/** How a worker's run went. */
export interface WorkerReport {
  completed: number;
  /** Items whose lease was lost while they were worked on (someone else has them now). */
  lost: number;
  /** Items whose handler threw: released, so that they are tried again. */
  failed: number;
}

/** Works on the pool's items until `options.signal` aborts. */
export async function runWorker(client: Client, pool: string, options: WorkerOptions): Promise<WorkerReport> {
  const { holder, signal, handle } = options;
  const report: WorkerReport = { completed: 0, lost: 0, failed: 0 };
  while (!signal.aborted) {
    let leases: Lease[];
    try {
      // `create`: a worker may start before the pool's first item is added.
      leases = await client.claimNext(pool, {
        holder,
        leaseMs: options.leaseMs ?? 30_000,
        waitMs: options.waitMs ?? 20_000,
        create: true,
        signal,
      });
    } catch (error) {
      if (signal.aborted) break;
      throw error;
    }
    for (const lease of leases) {
      // Released when this block is left without completing (a throw, a stop).
      await using held = lease;
      const work = AbortSignal.any ? AbortSignal.any([held.lost, signal]) : held.lost;
      try {
        const result = await handle({ id: held.id, data: held.data, token: held.token, signal: work });
        if (held.lost.aborted) {
          report.lost += 1;
          continue;
        }
        await held.complete(typeof result === "object" && result !== null ? result : undefined);
        report.completed += 1;
      } catch (error) {
        if (error instanceof LeaseholdError && error.code === "lease_lost") report.lost += 1;
        else if (held.lost.aborted) report.lost += 1;
        else report.failed += 1; // released by `await using`: tried again later
      }
    }
  }
  return report;
}

// Run on its own: work on POOL as HOLDER until Ctrl-C, logging each item.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const client = new Client({
    baseUrl: process.env["LEASEHOLD_URL"] ?? "http://127.0.0.1:8080",
    ...(process.env["LEASEHOLD_KEY"] ? { apiKey: process.env["LEASEHOLD_KEY"] } : {}),
  });
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  const report = await runWorker(client, process.env["POOL"] ?? "jobs", {
    holder: process.env["HOLDER"] ?? `worker-${process.pid}`,
    signal: stop.signal,
    handle: async (job) => {
      console.log(`working on ${job.id} (token ${job.token})`);
      return { done_at: new Date().toISOString() };
    },
  });
  console.log(`stopped: ${JSON.stringify(report)}`);
}
