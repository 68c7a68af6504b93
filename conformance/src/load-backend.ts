import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
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

/** Resolve a specifier from the caller's folder first (an outside project), then from this package. */
function resolveSpecifier(specifier: string): string {
  if (looksLikePath(specifier)) {
    const abs = resolve(process.cwd(), specifier);
    if (!existsSync(abs)) throw new BackendLoadError(`backend path not found: ${abs}`);
    const req = createRequire(pathToFileURL(resolve(process.cwd(), "noop.js")));
    try {
      return pathToFileURL(req.resolve(abs)).href;
    } catch {
      throw new BackendLoadError(`backend at ${abs} has no resolvable entry point (package.json "exports"/"main" or index.js)`);
    }
  }
  const pkg = WORKSPACE_BACKENDS[specifier] ?? specifier;
  for (const base of [resolve(process.cwd(), "noop.js"), import.meta.url]) {
    try {
      return pathToFileURL(createRequire(base).resolve(pkg)).href;
    } catch {
      /* try the next base */
    }
  }
  // ESM-only packages (exports without "require") are not resolvable by require.resolve; let import() try.
  return pkg;
}

/**
 * Load a backend by short name ("reference"), npm package name, or path to a package folder/file. The module
 * must export `createBackend(options?)`; the manifest it returns is validated.
 */
export async function loadBackend(specifier: string, options: Record<string, unknown> = {}): Promise<Backend> {
  const target = resolveSpecifier(specifier);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(target)) as Record<string, unknown>;
  } catch (err) {
    const known = Object.keys(WORKSPACE_BACKENDS).join(", ");
    throw new BackendLoadError(`cannot load backend "${specifier}": ${(err as Error).message}\n  (workspace backends: ${known}; or give a package name or a path)`);
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
