import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { resolve as esmResolve } from "import-meta-resolve";
import type { Backend } from "@nnspec/spec";
import { loadBackend, type LoadOptions } from "../load-backend.ts";
import type { BackendSupervisor } from "../runner.ts";
import { startProcessBackend, type ProcessSpec, type RemoteBackend } from "./client.ts";
import { commandProcess, isCommandSpecifier } from "./command-line.ts";

/** A backend instance the runner can replace, and close at the end. */
export interface BackendHost extends BackendSupervisor {
  /** "process" (a child serving it over the pipe protocol) or "in-process". */
  readonly isolation: "process" | "in-process";
  /** Dispose the backend and end its process. */
  close(): Promise<void>;
  /** End its process now, without waiting for it (a stopped run; nothing to do in-process). */
  kill(): void;
}

export interface HostOptions extends LoadOptions {
  /** Package name, path, short name, or "cmd:<command line>". */
  readonly backend: string;
  readonly backendOptions?: Record<string, unknown>;
  /** Load the backend into this process (debugging) instead of a child process; not for cmd: backends. */
  readonly inProcess?: boolean;
  readonly readyTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** The Node program that loads a JS/TS backend and serves it (serve-main.ts beside this file, .js in dist/). */
export function nodeServerProcess(backend: string, o: LoadOptions = {}): ProcessSpec {
  const self = fileURLToPath(import.meta.url);
  const ext = extname(self);
  const main = fileURLToPath(new URL(`./serve-main${ext}`, import.meta.url));
  // From sources (the workspace) the child compiles TypeScript as this process does: with tsx, the judge's own.
  const tsx = ext === ".ts" ? ["--import", esmResolve("tsx", import.meta.url)] : [];
  const inherited = process.execArgv.filter((a) => !a.startsWith("--inspect"));
  return {
    command: process.execPath,
    args: [...inherited, ...tsx, main, JSON.stringify({ backend, ...(o.aliases ? { aliases: o.aliases } : {}) })],
    label: `backend "${backend}"`,
    passStartErrors: true,
  };
}

async function processHost(spec: ProcessSpec, o: HostOptions): Promise<BackendHost> {
  const start = () =>
    startProcessBackend(spec, {
      options: o.backendOptions ?? {},
      ...(o.readyTimeoutMs ? { readyTimeoutMs: o.readyTimeoutMs } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  let current: RemoteBackend = await start();
  return {
    isolation: "process",
    current: () => current,
    lostReason: () => current.lostReason(),
    lost: () => current.lost,
    async restart() {
      current.kill();
      current = await start();
    },
    close: () => current.close(),
    kill: () => current.kill(),
  };
}

function inProcessHost(o: HostOptions, first: Backend): BackendHost {
  let current = first;
  return {
    isolation: "in-process",
    current: () => current,
    lostReason: () => undefined,
    lost: () => undefined,
    async restart() {
      // The old instance may still be busy (a hung promise cannot be cancelled in this process): let it go.
      void Promise.resolve()
        .then(() => current.dispose?.())
        .catch(() => undefined);
      current = await loadBackend(o.backend, o.backendOptions ?? {}, o);
    },
    async close() {
      await current.dispose?.();
    },
    kill: () => undefined,
  };
}

/**
 * Start a backend for a conformance run: a cmd: program, or a JS/TS backend served by a child Node process
 * (default), or loaded into this process (`inProcess`). Throws BackendLoadError / SpecValidationError (exit 2)
 * when it cannot be created, IncompleteError (exit 3) when it does not start in time.
 */
export async function startHost(o: HostOptions): Promise<BackendHost> {
  if (isCommandSpecifier(o.backend)) return processHost(commandProcess(o.backend), o);
  if (o.inProcess) return inProcessHost(o, await loadBackend(o.backend, o.backendOptions ?? {}, o));
  return processHost(nodeServerProcess(o.backend, o), o);
}
