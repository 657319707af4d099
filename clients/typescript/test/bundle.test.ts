/**
 * The library runs on any runtime with fetch: dist/index.js bundles for the browser (and
 * the neutral platform) without a Node builtin, and the sources name no Node-only module
 * or global.
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { build, type BuildOptions } from "esbuild";

import { packageRoot } from "./harness.js";

const root = packageRoot();

/** Bundles `options` in memory, its output and the files it read. */
async function bundle(options: BuildOptions): Promise<{ code: string; inputs: string[] }> {
  const result = await build({
    bundle: true,
    format: "esm",
    write: false,
    logLevel: "silent",
    metafile: true,
    ...options,
  });
  const code = result.outputFiles?.[0]?.text ?? "";
  return { code, inputs: Object.keys(result.metafile?.inputs ?? {}) };
}

for (const platform of ["browser", "neutral"] as const) {
  test(`dist/index.js bundles for platform ${platform} with no Node builtin`, async () => {
    // esbuild fails on any import it cannot resolve for the platform: a `node:` module or
    // a Node builtin such as `fs` is one.
    const { code, inputs } = await bundle({ entryPoints: [join(root, "dist", "index.js")], platform });
    assert.ok(inputs.length >= 8, `only ${inputs.join(", ")}`);
    assert.ok(
      inputs.every((input) => input.startsWith("dist/")),
      `read from outside dist/: ${inputs.join(", ")}`,
    );
    assert.doesNotMatch(code, /\bnode:/);
    assert.doesNotMatch(code, /\brequire\(/);
    assert.match(code, /\bClient = class\b/);
    assert.match(code, /followEvents\(/);
  });
}

test("the check can fail: a Node builtin does not bundle for the browser", async () => {
  for (const contents of [
    'import { readFileSync } from "node:fs"; console.log(readFileSync);',
    'import * as fs from "fs"; console.log(fs);',
  ]) {
    await assert.rejects(
      bundle({ stdin: { contents, resolveDir: root, loader: "js" }, platform: "browser" }),
      /Could not resolve/,
      contents,
    );
  }
});

test("the sources and the built files name no Node module, `process` or `Buffer`", () => {
  const forbidden =
    /\bnode:|\bprocess\.|\bBuffer\b|\brequire\(|from "(fs|path|os|http|https|url|crypto|stream|events|util|child_process)"/;
  const checked: string[] = [];
  for (const [dir, ext] of [
    ["src", ".ts"],
    ["dist", ".js"],
    ["dist", ".d.ts"],
  ] as const) {
    for (const name of readdirSync(join(root, dir)).filter((n) => n.endsWith(ext))) {
      const text = readFileSync(join(root, dir, name), "utf8");
      text.split("\n").forEach((line, i) => {
        assert.doesNotMatch(line, forbidden, `${dir}/${name}:${i + 1}: ${line.trim()}`);
      });
      checked.push(`${dir}/${name}`);
    }
  }
  assert.ok(checked.includes("src/client.ts") && checked.includes("dist/index.d.ts"));
  // The scan itself would catch one.
  assert.match('import { readFile } from "node:fs";', forbidden);
  assert.match("const b = Buffer.from(x);", forbidden);
  assert.match("if (process.env.X) {}", forbidden);
});
