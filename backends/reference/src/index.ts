import type { Backend, Capability } from "@nnspec/spec";
import { net222Ops } from "./net222.ts";
import { createCnnOps, defaultThreads, IN_NODE } from "./cnn/index.ts";

export const VERSION = "0.1.0";

export interface ReferenceOptions {
  /** "float64" (default): the CNN stores Float64Array and is held to float64 tolerance. "float32": the training path. */
  readonly precision?: "float32" | "float64";
  /** CNN conv threads: 1, or 2 (one worker_threads worker; default on machines with ≥ 2 cores). */
  readonly threads?: 1 | 2;
}

/**
 * The reference backend: pure TypeScript, no dependencies beyond spec. The 2-2-2 network always runs in float64;
 * the CNN runs in the declared precision (im2col + GEMM, BN, pool, dropout, SGD on typed arrays).
 */
export async function createBackend(options: ReferenceOptions = {}): Promise<Backend> {
  const precision = options.precision ?? "float64";
  const cnn = createCnnOps({ precision, threads: options.threads ?? (await defaultThreads()) });
  const capabilities: Capability[] = [
    "net222.forward", "net222.gradients", "net222.step", "net222.train",
    "cnn.forward", "cnn.backward", "cnn.step", "cnn.dropout",
  ];
  return {
    manifest: {
      name: "reference", version: VERSION, precision, environment: IN_NODE ? "node" : "browser",
      device: `cpu, pure TypeScript, ${precision === "float32" ? "Float32Array" : "Float64Array"}, ${cnn.threads} thread${cnn.threads > 1 ? "s" : ""}`,
      capabilities,
    },
    net222: net222Ops,
    cnn,
  };
}
