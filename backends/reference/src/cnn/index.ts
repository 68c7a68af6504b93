import type { CnnOps } from "@nnspec/spec";
import { arrayFactory, type CnnPrecision } from "./arrays.ts";
import { ReferenceCnnModel } from "./model.ts";

export type { CnnPrecision } from "./arrays.ts";
export { ReferenceCnnModel } from "./model.ts";

export interface CnnOpsOptions {
  /** Storage precision: "float32" (the training path) or "float64" (conformance at float64 tolerance). No default here: createBackend's options hold the backend's one default. */
  readonly precision: CnnPrecision;
  /** 1 = single-threaded; 2 = one worker_threads conv worker per model (Node only). */
  readonly threads?: 1 | 2;
}

/** True under Node (worker_threads available); false in a browser page. */
export const IN_NODE = typeof process !== "undefined" && typeof process.versions?.node === "string";

/** Default thread count: 2 on a Node machine with ≥ 2 cores, else 1. Lazy import keeps node: modules out of browser bundles. */
export async function defaultThreads(): Promise<1 | 2> {
  if (!IN_NODE) return 1;
  const os = await import("node:os");
  return os.availableParallelism() >= 2 ? 2 : 1;
}

/** The reference backend's CNN operations. */
export function createCnnOps(
  options: CnnOpsOptions,
): CnnOps & { readonly precision: CnnPrecision; readonly threads: number } {
  const f = arrayFactory(options.precision);
  const threads = options.threads ?? 1;
  return {
    precision: f.precision,
    threads,
    async create(init) {
      const pool = threads > 1 ? await (await import("./conv-pool.ts")).ConvPool.start() : null;
      try {
        return new ReferenceCnnModel(f, init, pool);
      } catch (e) {
        await pool?.close();
        throw e;
      }
    },
  };
}
