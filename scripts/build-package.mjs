#!/usr/bin/env node
// Builds the package in the current folder to dist/: tsc (ESM .js + .d.ts, `./x.ts` imports rewritten to `./x.js`)
// over tsconfig.build.json, then copies the non-TypeScript runtime files under src/ (worker boot scripts and the
// like) beside the compiled code. Builds into a temporary folder and renames it, so dist/ is never half-written.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { extname, join, relative } from "node:path";

/** Files under src/ that are runtime code or data but not TypeScript. */
const COPIED = new Set([".mjs", ".cjs", ".js", ".json", ".wasm", ".py"]);

const pkgDir = process.cwd();
const tmp = join(pkgDir, ".dist-tmp");
const out = join(pkgDir, "dist");
rmSync(tmp, { recursive: true, force: true });

const tsc = createRequire(join(pkgDir, "package.json")).resolve("typescript/bin/tsc");
const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", tmp], {
  cwd: pkgDir,
  stdio: "inherit",
});
if (r.status !== 0) {
  rmSync(tmp, { recursive: true, force: true });
  console.error(`build failed in ${pkgDir} (tsc exit ${r.status ?? r.signal})`);
  process.exit(1);
}

function copyRuntimeFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) copyRuntimeFiles(p);
    else if (COPIED.has(extname(entry.name))) cpSync(p, join(tmp, relative(join(pkgDir, "src"), p)));
  }
}
copyRuntimeFiles(join(pkgDir, "src"));

rmSync(out, { recursive: true, force: true });
renameSync(tmp, out);
if (!existsSync(join(out, "index.js"))) {
  console.error(`build in ${pkgDir} produced no dist/index.js`);
  process.exit(1);
}
console.log(`built ${relative(process.cwd(), out) || "dist"} (${pkgDir})`);
