#!/usr/bin/env node
// Compiles the AssemblyScript kernels (assembly/*.ts) to src/wasm/nnspec.wasm with asc from npm, and records beside
// it (src/wasm/nnspec.json) a hash of everything the binary is made from: the sources, the asc version and flags.
// A binary whose recorded hash differs from the sources' is stale; tests fail on it and the Node loader rebuilds.
//
//   node scripts/build-wasm.mjs            build if stale (what `prepare` and the loader run)
//   node scripts/build-wasm.mjs --force    always build
//   node scripts/build-wasm.mjs --check    exit 1 if missing or stale, build nothing
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SOURCE_DIR = join(PACKAGE_DIR, "assembly");
export const WASM_FILE = join(PACKAGE_DIR, "src", "wasm", "nnspec.wasm");
export const RECORD_FILE = join(PACKAGE_DIR, "src", "wasm", "nnspec.json");

/**
 * asc flags. Shared memory imported from JS (every thread's instance runs on it), SIMD and atomics on, the stub
 * runtime (the kernels allocate nothing), no abort import, no assertions.
 */
export const ASC_FLAGS = [
  "-O3",
  "--noAssert",
  "--runtime",
  "stub",
  "--use",
  "abort=",
  "--enable",
  "simd",
  "--enable",
  "threads",
  "--importMemory",
  "--sharedMemory",
  "--initialMemory",
  "1",
  "--maximumMemory",
  "65536",
];

function ascVersion() {
  const require = createRequire(join(PACKAGE_DIR, "package.json"));
  return JSON.parse(readFileSync(require.resolve("assemblyscript/package.json"), "utf8")).version;
}

/** The AssemblyScript sources, sorted by name. */
export function sourceFiles(dir = SOURCE_DIR) {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".ts"))
    .sort();
}

/** sha256 over the asc version, the flags and every source file (name and bytes) of `dir`. */
export function sourceHash(version = ascVersion(), dir = SOURCE_DIR) {
  const h = createHash("sha256");
  h.update(`asc ${version}\0${ASC_FLAGS.join(" ")}\0`);
  for (const f of sourceFiles(dir))
    h.update(`${f}\0`)
      .update(readFileSync(join(dir, f)))
      .update("\0");
  return h.digest("hex");
}

export function readRecord() {
  if (!existsSync(RECORD_FILE)) return null;
  return JSON.parse(readFileSync(RECORD_FILE, "utf8"));
}

/** Why the built binary cannot be used with the sources in `dir`, or null when it is up to date. */
export function staleness(dir = SOURCE_DIR) {
  const record = readRecord();
  if (!record || !existsSync(WASM_FILE)) return "src/wasm/nnspec.wasm has not been built";
  const wasmSha = createHash("sha256").update(readFileSync(WASM_FILE)).digest("hex");
  if (wasmSha !== record.wasmSha256) return "src/wasm/nnspec.wasm does not match the hash recorded when it was built";
  if (record.sourceHash !== sourceHash(undefined, dir))
    return "src/wasm/nnspec.wasm is stale: assembly/ (or asc or its flags) changed since it was built";
  return null;
}

/** Compiles into `outFile` (written whole: a temporary file renamed into place). Returns the binary. */
export async function compile(outFile = WASM_FILE) {
  const { default: asc } = await import("assemblyscript/asc");
  mkdirSync(dirname(outFile), { recursive: true });
  const tmp = `${outFile}.${process.pid}.tmp`;
  let stderr = "";
  const { error } = await asc.main([join(SOURCE_DIR, "index.ts"), "-o", tmp, ...ASC_FLAGS], {
    stdout: { write: () => true },
    stderr: {
      write: (s) => {
        stderr += String(s);
        return true;
      },
    },
  });
  if (error) {
    rmSync(tmp, { force: true });
    throw new Error(`asc failed: ${error.message}\n${stderr}`);
  }
  renameSync(tmp, outFile);
  return readFileSync(outFile);
}

/** Builds the binary and its record; the record is written last, so a crash never leaves a fresh-looking stale pair. */
export async function build() {
  const version = ascVersion();
  const hash = sourceHash(version);
  const wasm = await compile();
  const record = {
    sourceHash: hash,
    wasmSha256: createHash("sha256").update(wasm).digest("hex"),
    asc: version,
    flags: ASC_FLAGS,
    sources: sourceFiles(),
  };
  const tmp = `${RECORD_FILE}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(tmp, RECORD_FILE);
  return record;
}

/** Builds when missing or stale; returns whether it built. */
export async function ensureBuilt() {
  if (staleness() === null) return false;
  await build();
  return true;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const arg = process.argv[2];
  if (arg === "--check") {
    const why = staleness();
    if (why) {
      console.error(`@nnspec/backend-wasm: ${why} (run: pnpm --filter @nnspec/backend-wasm build:wasm)`);
      process.exit(1);
    }
    console.log("@nnspec/backend-wasm: src/wasm/nnspec.wasm is up to date");
  } else if (arg === "--force" || staleness() !== null) {
    const t0 = Date.now();
    const r = await build();
    console.log(
      `@nnspec/backend-wasm: built src/wasm/nnspec.wasm from ${r.sources.length} AssemblyScript files in ${((Date.now() - t0) / 1000).toFixed(1)} s (asc ${r.asc})`,
    );
  } else {
    console.log("@nnspec/backend-wasm: src/wasm/nnspec.wasm is up to date");
  }
}
