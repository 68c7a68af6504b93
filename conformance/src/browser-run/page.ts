/**
 * The page of `nnspec conformance --browser`, run in headless Chromium and served by the run's Vite server
 * (run.ts): import the backend, create it, collect the suite's checks and run them, posting every result to the
 * server as it completes. Browser-only: no node: imports; only the judge's browser-safe modules (suite, runner).
 */
import { FixtureReadError, resolveAgainst, type FixtureIO } from "@nnspec/fixtures/core";
import type { Backend } from "@nnspec/spec";
import { runChecks } from "../runner.ts";
import { collectChecks } from "../suite.ts";
import {
  ENDPOINT,
  encodeMessage,
  type FixtureErrorReply,
  type PageConfig,
  type PageMessage,
  type PagePhase,
} from "./protocol.ts";

/** Messages go out one after another, in order; a lost server (the run is over) is not the page's problem. */
function messenger(): { send(m: PageMessage): Promise<void> } {
  let chain: Promise<void> = Promise.resolve();
  return {
    send(m) {
      const body = encodeMessage(m);
      chain = chain.then(async () => {
        try {
          await fetch(`${ENDPOINT}/message`, { method: "POST", headers: { "content-type": "application/json" }, body });
        } catch {
          // The server is gone: nobody is listening any more.
        }
      });
      return chain;
    },
  };
}

/** Golden files fetched from the run's server, which reads them from disk (only inside the fixture folders). */
export function fetchFixtureIO(config: PageConfig): FixtureIO {
  const readBytes = async (path: string): Promise<Uint8Array> => {
    const res = await fetch(`${ENDPOINT}/fixture?path=${encodeURIComponent(path)}`);
    if (!res.ok) {
      const reply = (await res
        .json()
        .catch(() => ({ missing: false, message: `HTTP ${res.status}` }))) as FixtureErrorReply;
      throw new FixtureReadError(path, reply.missing, reply.message);
    }
    return new Uint8Array(await res.arrayBuffer());
  };
  return {
    readBytes,
    readText: async (path) => new TextDecoder().decode(await readBytes(path)),
    listJson: async (dir) => {
      const res = await fetch(`${ENDPOINT}/list?dir=${encodeURIComponent(dir)}`);
      if (!res.ok)
        throw new Error(
          `${dir}: ${((await res.json().catch(() => ({ message: `HTTP ${res.status}` }))) as FixtureErrorReply).message}`,
        );
      return (await res.json()) as string[];
    },
    resolve: (path) => resolveAgainst(config.cwd, path),
    fixtureDirs: config.fixtureDirs,
  };
}

/** The whole run. Never throws: a failure becomes an "error" message naming the phase. */
export async function main(config: PageConfig): Promise<void> {
  const { send } = messenger();
  let phase: PagePhase = "load";
  const fail = (err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    return send({ type: "error", phase, name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
  };
  // A backend's stray async failure would end a Node run too.
  addEventListener("error", (ev) => void fail(ev.error ?? ev.message));
  addEventListener("unhandledrejection", (ev) => {
    // Vite's HMR client, should a backend module pull it in, finds no websocket (the run serves none): harmless.
    if (ev.reason instanceof Error && ev.reason.message === "WebSocket closed without opened.") return;
    void fail(ev.reason);
  });
  let backend: Backend | undefined;
  try {
    // A literal import of the server's virtual module: Vite rewrites it, and the page never loads Vite's HMR client.
    const mod = (await import("virtual:nnspec-backend")).default;
    const create = mod.createBackend ?? (mod.default as Record<string, unknown> | undefined)?.createBackend;
    if (typeof create !== "function") throw new Error(`backend "${config.backend}" does not export createBackend()`);
    phase = "create";
    backend = (await create(config.backendOptions)) as Backend;
    await send({ type: "backend", manifest: backend.manifest });
    phase = "suite";
    const checks = await collectChecks({
      precision: backend.manifest?.precision,
      io: fetchFixtureIO(config),
      workbooks: [],
      ...(config.onlyFixtures ? { onlyFixtures: config.onlyFixtures } : {}),
      ...(config.extraFixtures ? { extraFixtures: config.extraFixtures } : {}),
    });
    phase = "run";
    void send({ type: "start", total: checks.length });
    await runChecks(backend, checks, {
      onResult: (result, index, total) => void send({ type: "result", index, total, result }),
    });
    await backend.dispose?.();
    await send({ type: "done" });
  } catch (err) {
    await fail(err);
  }
}
