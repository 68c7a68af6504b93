import { z } from "zod";
import { CAPABILITIES, packageVersion, parseOptions, type Backend } from "@nnspec/spec";
import pkg from "../package.json" with { type: "json" };
import { net222Ops } from "./net222.ts";
import { createCnnOps, defaultThreads, IN_NODE, type CnnPrecision } from "./cnn/index.ts";

/** This package's version, from its package.json (src/ and dist/ both sit one level below it). */
export const VERSION = packageVersion(pkg, "@nnspec/backend-reference package.json");

/** The CNN precisions this backend offers: float64 stores Float64Array, float32 Float32Array (the training path). */
const PRECISIONS = ["float64", "float32"] as const satisfies readonly CnnPrecision[];

const optionsSchema = z
  .object({
    /** Default float64: the CNN is held to float64 tolerance. */
    precision: z
      .enum(PRECISIONS, {
        errorMap: (_issue, ctx) => ({
          message: `${JSON.stringify(ctx.data)} is not offered (the reference backend offers ${PRECISIONS.join(", ")})`,
        }),
      })
      .default("float64"),
    /** CNN conv threads: 1, or 2 (one worker_threads worker); default 2 on machines with ≥ 2 cores. */
    threads: z
      .union([z.literal(1), z.literal(2)], {
        errorMap: (_issue, ctx) => ({ message: `must be 1 or 2, got ${JSON.stringify(ctx.data)}` }),
      })
      .optional(),
  })
  .strict();

export type ReferenceOptions = z.input<typeof optionsSchema>;

/**
 * The reference backend: pure TypeScript, no dependencies beyond spec (and zod for its options). The 2-2-2 network always runs in float64;
 * the CNN runs in the declared precision (im2col + GEMM, BN, pool, dropout, SGD on typed arrays).
 */
export async function createBackend(options: ReferenceOptions = {}): Promise<Backend> {
  const { precision, threads } = parseOptions(optionsSchema, options, "reference backend");
  const cnn = createCnnOps({ precision, threads: threads ?? (await defaultThreads()) });
  return {
    manifest: {
      name: "reference",
      version: VERSION,
      precision,
      environment: IN_NODE ? "node" : "browser",
      device: `cpu, pure TypeScript, ${precision === "float32" ? "Float32Array" : "Float64Array"}, ${cnn.threads} thread${cnn.threads > 1 ? "s" : ""}`,
      capabilities: [...CAPABILITIES],
    },
    net222: net222Ops,
    cnn,
  };
}
