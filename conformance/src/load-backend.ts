import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { resolve as esmResolve } from "import-meta-resolve";
import { z } from "zod";
import { UsageError, errorMessage } from "./errors.ts";
import { SpecValidationError, manifestSchema, parseWith, type Backend } from "@nnspec/spec";
import { startProcessBackend } from "./protocol/client.ts";
import { commandProcess, isCommandSpecifier } from "./protocol/command-line.ts";

export class BackendLoadError extends UsageError {
  override name = "BackendLoadError";
}

export interface LoadOptions {
  /** Short names → package names (a workspace's registry, e.g. tools' "reference" → "@nnspec/backend-reference"). */
  readonly aliases?: Readonly<Record<string, string>>;
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
        throw new BackendLoadError(
          `backend at ${dir}: package.json "exports" has no entry for import: ${(err as Error).message}`,
        );
      }
    }
  }
  try {
    return pathToFileURL(createRequire(pkgFile).resolve(dir)).href;
  } catch {
    throw new BackendLoadError(
      `backend at ${dir} has no resolvable entry point (package.json "exports"/"main" or index.js)`,
    );
  }
}

/**
 * Resolve a specifier to a module URL. Paths are taken from the current folder; package names resolve with ESM
 * rules (so "exports" with only an "import" condition work) from the current folder first — an outside project's
 * own node_modules — then from this package.
 */
export function resolveBackendEntry(specifier: string, o: LoadOptions = {}): string {
  if (looksLikePath(specifier)) {
    const abs = resolve(process.cwd(), specifier);
    if (!existsSync(abs)) throw new BackendLoadError(`backend path not found: ${abs}`);
    return statSync(abs).isDirectory() ? resolvePackageFolder(abs) : pathToFileURL(abs).href;
  }
  const pkg = o.aliases?.[specifier] ?? specifier;
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
 * Import errors that mean "no TS loader handled this file": none active (plain Node), or tsx's ESM-only loader
 * meeting a .ts file of a package without "type": "module" (it hands those to CommonJS require).
 */
const NO_TS_LOADER = new Set(["ERR_UNKNOWN_FILE_EXTENSION", "ERR_REQUIRE_CYCLE_MODULE", "ERR_REQUIRE_ESM"]);

interface Imported {
  readonly module: Record<string, unknown>;
  readonly close?: () => Promise<void>;
}

/**
 * A TypeScript entry (a backend used straight from its sources) outside a process that compiles TS: Vite (which
 * vitest, the judge's peer, brings) transforms and runs it, whatever its package's "type". The server stays up
 * while the backend lives, for the backend's own lazy imports.
 */
async function importThroughVite(url: string): Promise<Imported> {
  let vite: typeof import("vite");
  try {
    vite = await import("vite");
  } catch {
    throw new BackendLoadError(
      `${fileURLToPath(url)} is TypeScript: build it to JavaScript first, or install vitest (which brings vite) to load it from source`,
    );
  }
  const file = fileURLToPath(url);
  const server = await vite.createServer({
    configFile: false,
    root: dirname(file),
    logLevel: "error",
    appType: "custom",
    server: { middlewareMode: true, hmr: false, watch: null },
    optimizeDeps: { noDiscovery: true, include: [] },
  });
  try {
    return { module: (await server.ssrLoadModule(file)) as Record<string, unknown>, close: () => server.close() };
  } catch (err) {
    await server.close();
    throw err;
  }
}

/** Import a backend module: natively where that works (JS, or TS under vitest/tsx), else TS through Vite. */
async function importBackend(url: string): Promise<Imported> {
  try {
    return { module: (await import(url)) as Record<string, unknown> };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (!TS_ENTRY.test(new URL(url).pathname) || typeof code !== "string" || !NO_TS_LOADER.has(code)) throw err;
  }
  return importThroughVite(url);
}

/**
 * Load a backend by npm package name (or an alias the caller registers) or by path to a package folder or file.
 * The module must export `createBackend(options?)`; the manifest it returns is validated. "cmd:<command line>"
 * starts a program that speaks the pipe protocol (docs/backend-protocol.md) instead: its methods are calls to it,
 * and its `dispose()` ends it.
 */
export async function loadBackend(
  specifier: string,
  options: Record<string, unknown> = {},
  o: LoadOptions = {},
): Promise<Backend> {
  if (isCommandSpecifier(specifier)) return startProcessBackend(commandProcess(specifier), { options });
  const known = Object.keys(o.aliases ?? {});
  const hint = `\n  (give a package name or a path${known.length ? `; short names here: ${known.join(", ")}` : ""})`;
  let imported: Imported;
  try {
    imported = await importBackend(resolveBackendEntry(specifier, o));
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof BackendLoadError && message.startsWith("cannot load backend"))
      throw new BackendLoadError(message + hint);
    if (err instanceof BackendLoadError) throw err;
    throw new BackendLoadError(`cannot load backend "${specifier}": ${message}${hint}`);
  }
  const mod = imported.module;
  const create = mod.createBackend ?? (mod.default as Record<string, unknown> | undefined)?.createBackend;
  if (typeof create !== "function") {
    await imported.close?.();
    throw new BackendLoadError(`backend "${specifier}" does not export createBackend()`);
  }
  let backend: Backend;
  try {
    backend = (await create(options)) as Backend;
  } catch (err) {
    await imported.close?.();
    // A backend's own option validation is a usage error as it stands; anything else is named as createBackend's.
    if (err instanceof SpecValidationError) throw err;
    throw new BackendLoadError(`backend "${specifier}": createBackend() failed: ${errorMessage(err)}`, { cause: err });
  }
  parseWith(manifestSchema, backend?.manifest, `manifest of backend "${specifier}"`);
  if (!imported.close) return backend;
  const close = imported.close;
  const dispose = backend.dispose?.bind(backend);
  // The contract's members only (Backend): the Vite server closes after the backend's own dispose.
  return {
    manifest: backend.manifest,
    net222: backend.net222,
    cnn: backend.cnn,
    dispose: async () => {
      await dispose?.();
      await close();
    },
  };
}
