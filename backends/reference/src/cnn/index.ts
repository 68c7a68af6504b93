import type { CnnOps } from "@nnspec/spec";
import { arrayFactory, type CnnPrecision } from "./arrays.ts";
import { ReferenceCnnModel } from "./model.ts";
import { ConvPool } from "./conv-pool.ts";
import { availableParallelism } from "node:os";

export type { CnnPrecision } from "./arrays.ts";
export { ReferenceCnnModel } from "./model.ts";

export interface CnnOpsOptions {
  /** Storage precision: "float32" (default, the training path) or "float64" (conformance at float64 tolerance). */
  readonly precision?: CnnPrecision;
  /** 1 = single-threaded; 2 (default when the machine has ≥ 2 cores) = one conv worker per model. */
  readonly threads?: 1 | 2;
}

/** The reference backend's CNN operations. */
export function createCnnOps(options: CnnOpsOptions = {}): CnnOps & { readonly precision: CnnPrecision; readonly threads: number } {
  const f = arrayFactory(options.precision ?? "float32");
  const threads = options.threads ?? (availableParallelism() >= 2 ? 2 : 1);
  return {
    precision: f.precision,
    threads,
    async create(init) {
      const pool = threads > 1 ? await ConvPool.start() : null;
      try {
        return new ReferenceCnnModel(f, init, pool);
      } catch (e) {
        await pool?.close();
        throw e;
      }
    },
  };
}
