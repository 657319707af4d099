/**
 * The package as it is published: `npm pack` holds dist/ (with type declarations) and no
 * sources or tests, and a fresh project outside the repository installs the tarball
 * (offline: there are no dependencies) and uses it, in JavaScript and in TypeScript (also
 * with lib ["ES2022", "DOM"] and no @types/node, as a browser app compiles).
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { packageRoot, runId, startDev } from "./harness.js";

const run = promisify(execFile);
const root = packageRoot();

/** npm: the one running `npm test` (npm_execpath), else the one on PATH. */
async function npm(args: string[], cwd: string): Promise<string> {
  const cli = process.env["npm_execpath"];
  const [command, argv] = cli?.endsWith(".js") ? [process.execPath, [cli, ...args]] : ["npm", args];
  const { stdout } = await run(command, argv, {
    cwd,
    env: { ...process.env, npm_config_fund: "false", npm_config_audit: "false", npm_config_update_notifier: "false" },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

let stop: () => Promise<void> = async () => undefined;
let url: string;
const temp: string[] = [];

before(async () => {
  const s = await startDev();
  stop = s.stop;
  url = s.url;
});
after(async () => {
  for (const dir of temp) rmSync(dir, { recursive: true, force: true });
  await stop();
});

test("npm pack holds dist with declarations, no sources or tests; a fresh project installs and uses it", async () => {
  const out = mkdtempSync(join(tmpdir(), "leasehold-ts-pack-"));
  temp.push(out);
  // dist/ was just built by `npm test`; the pack takes it as it is.
  const [packed] = JSON.parse(await npm(["pack", "--json", "--ignore-scripts", "--pack-destination", out], root)) as {
    filename: string;
    name: string;
    version: string;
    files: { path: string }[];
  }[];
  assert.ok(packed);
  assert.equal(packed.name, "leasehold-client");
  assert.equal(packed.version, "0.1.0");
  const files = packed.files.map((f) => f.path).sort();
  for (const module of ["index", "client", "lease", "events", "errors", "retry", "transport", "types", "sse", "util"]) {
    assert.ok(files.includes(`dist/${module}.js`), `dist/${module}.js is missing: ${files.join(", ")}`);
    assert.ok(files.includes(`dist/${module}.d.ts`), `dist/${module}.d.ts is missing`);
  }
  assert.ok(files.includes("package.json") && files.includes("README.md"));
  for (const file of files) {
    assert.ok(
      file.startsWith("dist/") || ["package.json", "README.md", "LICENSE"].includes(file),
      `${file} should not be packed`,
    );
  }

  const project = mkdtempSync(join(tmpdir(), "leasehold-ts-consumer-"));
  temp.push(project);
  await npm(["init", "-y"], project);
  await npm(["pkg", "set", "type=module"], project);
  await npm(["install", "--offline", "--no-audit", "--no-fund", join(out, packed.filename)], project);

  writeFileSync(
    join(project, "smoke.mjs"),
    `import { Client, LeaseholdError } from "leasehold-client";
const client = new Client({ baseUrl: process.env.LEASEHOLD_URL });
const pool = process.env.POOL;
await client.addItems(pool, [{ id: "smoke", data: { n: 1 } }]);
const [lease] = await client.claimNext(pool, { holder: "smoke-test", leaseMs: 10000 });
const done = await lease.complete({ n: 2 });
let refused = "";
try { await client.getItem(pool, "nothing"); } catch (e) { if (e instanceof LeaseholdError) refused = e.code; }
console.log(JSON.stringify({ id: done.id, state: done.state, data: done.data, token: lease.token, refused }));
`,
  );
  const pool = `smoke-${runId()}`;
  const { stdout } = await run(process.execPath, ["smoke.mjs"], {
    cwd: project,
    env: { ...process.env, LEASEHOLD_URL: url, POOL: pool },
  });
  assert.deepEqual(JSON.parse(stdout.trim()), {
    id: "smoke",
    state: "done",
    data: { n: 2 },
    token: 1,
    refused: "not_found",
  });

  // Its types serve a strict TypeScript project (through the package's exports).
  writeFileSync(
    join(project, "consumer.ts"),
    `import { Client, LeaseholdError, type Lease, type ProblemCode } from "leasehold-client";
const client = new Client({ baseUrl: "http://127.0.0.1:8080", retries: 2 });
export async function work(pool: string): Promise<string> {
  for (const lease of await client.claimNext(pool, { holder: "h", leaseMs: 1000 })) {
    await using held: Lease = lease;
    const item = await held.complete({ ok: true });
    return item.state;
  }
  try {
    await client.getItem(pool, "x");
  } catch (e) {
    if (e instanceof LeaseholdError) {
      const code: ProblemCode = e.code;
      return code;
    }
  }
  return "none";
}
`,
  );
  const tsc = join(root, "node_modules", ".bin", "tsc");
  await run(
    tsc,
    [
      "--noEmit",
      "--strict",
      "--target",
      "es2022",
      "--module",
      "nodenext",
      "--moduleResolution",
      "nodenext",
      "--lib",
      "es2022,esnext.disposable,dom",
      "--types",
      "",
      "consumer.ts",
    ],
    { cwd: project },
  ).catch((error: { stdout?: string; stderr?: string }) => {
    assert.fail(`the consumer does not typecheck:\n${error.stdout ?? ""}${error.stderr ?? ""}`);
  });

  // A project whose lib has neither the disposable declarations nor Node's types (a
  // browser app on lib ["ES2022", "DOM"]): the declarations bring what they need
  // themselves (`Symbol.asyncDispose`, through a reference to that lib).
  writeFileSync(
    join(project, "browser.ts"),
    `import { Client, LeaseholdError, type Lease, type FollowedEvent } from "leasehold-client";
const client = new Client({ baseUrl: "https://leasehold.example", timeoutMs: 5000 });
export async function work(pool: string, signal: AbortSignal): Promise<number> {
  const leases: Lease[] = await client.claimNext(pool, { holder: "browser", leaseMs: 30000, signal });
  for (const lease of leases) {
    try {
      await lease.complete({ ok: true }, { signal });
    } catch (e) {
      if (!(e instanceof LeaseholdError)) throw e;
      await lease.release().catch(() => undefined);
    }
  }
  const seen: FollowedEvent[] = [];
  for await (const event of client.followEvents(pool, { signal })) {
    seen.push(event);
    break;
  }
  return leases.length + seen.length;
}
`,
  );
  writeFileSync(
    join(project, "tsconfig.browser.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2022", "DOM"],
        types: [],
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
      },
      files: ["browser.ts"],
    }),
  );
  await run(tsc, ["-p", "tsconfig.browser.json"], { cwd: project }).catch(
    (error: { stdout?: string; stderr?: string }) => {
      assert.fail(
        `a consumer with lib ["ES2022", "DOM"] and no @types/node does not typecheck:\n${error.stdout ?? ""}${error.stderr ?? ""}`,
      );
    },
  );
});
