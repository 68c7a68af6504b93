import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { resolve as esmResolve } from "import-meta-resolve";
import { z } from "zod";
import { UsageError } from "./errors.ts";
import { manifestSchema, parseWith, type Backend } from "@nnspec/spec";

/** Short names of the backends in this workspace → their packages. */
export const WORKSPACE_BACKENDS: Readonly<Record<string, string>> = {
  reference: "@nnspec/backend-reference",
  "tfjs-wasm": "@nnspec/backend-tfjs-wasm",
  gpujs: "@nnspec/backend-gpujs",
};

export class BackendLoadError extends UsageError {
  override name = "BackendLoadError";
}

function looksLikePath(s: string): boolean {
  return s.startsWith(".") || s.startsWith("/") || isAbsolute(s);
}

/** The fields of a backend folder's package.json that decide its entry point. */
const packageJsonSchema = z.object({ name: z.string().optional(), exports: z.unknown().optional() }).passthrough();

/** A package folder's entry: its "exports" (ESM resolution, through self-reference), else "main"/index.js. */
function resolvePackageFolder(dir: string): string {
  const pkgFile = join(dir, "package.json");
  if (existsSync(pkgFile)) {
    const pkg = parseWith(packageJsonSchema, JSON.parse(readFileSync(pkgFile, "utf8")) as unknown, pkgFile);
    if (pkg.name && pkg.exports !== undefined) {
      try {
        return esmResolve(pkg.name, pathToFileURL(pkgFile).href);
      } catch (err) {
        throw new BackendLoadError(`backend at ${dir}: package.json "exports" has no entry for import: ${(err as Error).message}`);
      }
    }
  }
  try {
    return pathToFileURL(createRequire(pkgFile).resolve(dir)).href;
  } catch {
    throw new BackendLoadError(`backend at ${dir} has no resolvable entry point (package.json "exports"/"main" or index.js)`);
  }
}

/**
 * Resolve a specifier to a module URL. Paths are taken from the caller's folder; package names resolve with ESM
 * rules (so "exports" with only an "import" condition work) from the caller's folder first — an outside project's
 * own node_modules — then from this package.
 */
function resolveSpecifier(specifier: string): string {
  if (looksLikePath(specifier)) {
    const abs = resolve(process.cwd(), specifier);
    if (!existsSync(abs)) throw new BackendLoadError(`backend path not found: ${abs}`);
    return statSync(abs).isDirectory() ? resolvePackageFolder(abs) : pathToFileURL(abs).href;
  }
  const pkg = WORKSPACE_BACKENDS[specifier] ?? specifier;
  const errors: string[] = [];
  for (const parent of [pathToFileURL(join(process.cwd(), "noop.js")).href, import.meta.url]) {
    try {
      return esmResolve(pkg, parent);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  throw new BackendLoadError(`cannot load backend "${specifier}": ${errors[0] ?? "not found"}`);
}

const TS_ENTRY = /\.[cm]?ts$/;

/**
 * Import errors that mean "no TS loader handled this file": none active (the published CLI), or tsx's ESM-only
 * loader meeting a .ts file of a package without "type": "module" (it hands those to CommonJS require).
 */
const NO_TS_LOADER = new Set(["ERR_UNKNOWN_FILE_EXTENSION", "ERR_REQUIRE_CYCLE_MODULE", "ERR_REQUIRE_ESM"]);

/**
 * Import a backend module. A TypeScript entry (a backend used straight from its sources) loads natively when the
 * process already compiles TS (vitest, the workspace's tsx-run CLI) — keeping one instance of shared packages — and
 * otherwise through tsx's scoped loader, which compiles it whatever its package's "type" is.
 */
async function importBackend(url: string): Promise<Record<string, unknown>> {
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (!TS_ENTRY.test(new URL(url).pathname) || typeof code !== "string" || !NO_TS_LOADER.has(code)) throw err;
  }
  const { tsImport } = await import("tsx/esm/api");
  return (await tsImport(url, import.meta.url)) as Record<string, unknown>;
}

/**
 * Load a backend by short name ("reference"), npm package name, or path to a package folder/file. The module
 * must export `createBackend(options?)`; the manifest it returns is validated.
 */
export async function loadBackend(specifier: string, options: Record<string, unknown> = {}): Promise<Backend> {
  const known = Object.keys(WORKSPACE_BACKENDS).join(", ");
  const hint = `\n  (workspace backends: ${known}; or give a package name or a path)`;
  let mod: Record<string, unknown>;
  try {
    mod = await importBackend(resolveSpecifier(specifier));
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof BackendLoadError && message.startsWith("cannot load backend")) throw new BackendLoadError(message + hint);
    if (err instanceof BackendLoadError) throw err;
    throw new BackendLoadError(`cannot load backend "${specifier}": ${message}${hint}`);
  }
  const create = mod.createBackend ?? (mod.default as Record<string, unknown> | undefined)?.createBackend;
  if (typeof create !== "function") throw new BackendLoadError(`backend "${specifier}" does not export createBackend()`);
  const backend = (await create(options)) as Backend;
  parseWith(manifestSchema, backend?.manifest, `manifest of backend "${specifier}"`);
  return backend;
}

/** What `pnpm conformance` (`nnspec conformance --all`) runs: every workspace backend in each configuration it offers. */
export const WORKSPACE_RUNS: ReadonlyArray<{ readonly backend: string; readonly options: Record<string, unknown> }> = [
  { backend: "reference", options: { precision: "float64" } },
  { backend: "reference", options: { precision: "float32" } },
  { backend: "tfjs-wasm", options: {} },
  { backend: "gpujs", options: {} },
];
