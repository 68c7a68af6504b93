import { z } from "zod";
import { CAPABILITIES, packageVersion, parseOptions, type Backend } from "@nnspec/spec";
import pkg from "../package.json" with { type: "json" };
import { createCnnOps } from "./cnn.ts";
import { IN_NODE, kernelModule } from "./kernels.ts";
import { createNet222Ops } from "./net222.ts";

/** This package's version, from its package.json (src/ and dist/ both sit one level below it). */
export const VERSION = packageVersion(pkg, "@nnspec/backend-wasm package.json");

/** The most threads a model uses (the kernels' per-thread scratch is sized for 64). */
export const MAX_THREADS = 64;

const optionsSchema = z
  .object({
    /** Threads per model: 1 runs on the calling thread; more start that many workers on one shared memory. Default: every core. */
    threads: z
      .number()
      .superRefine((v, ctx) => {
        if (!(Number.isInteger(v) && v >= 1 && v <= MAX_THREADS))
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            message: `must be an integer from 1 to ${MAX_THREADS}, got ${v}`,
          });
      })
      .optional(),
    /** Accepted for callers generic over backends; the kernels compute in float32 only. */
    precision: z
      .literal("float32", {
        errorMap: (_i, ctx) => ({
          message: `${JSON.stringify(ctx.data)} is not offered (the wasm backend computes in float32)`,
        }),
      })
      .optional(),
  })
  .strict();

export type WasmOptions = z.input<typeof optionsSchema>;

/** Every core of this machine (Node) or the browser's hardwareConcurrency, at most MAX_THREADS. */
export async function defaultThreads(): Promise<number> {
  let cores = 1;
  if (IN_NODE) cores = (await import("node:os")).availableParallelism();
  else if (typeof navigator !== "undefined") cores = navigator.hardwareConcurrency || 1;
  return Math.max(1, Math.min(MAX_THREADS, cores));
}

/**
 * nnspec's own WebAssembly backend: AssemblyScript kernels (assembly/) with 128-bit SIMD, compiled by asc at
 * build time; a model's batch is split across `threads` threads on one shared WebAssembly.Memory
 * (worker_threads in Node, Web Workers in a cross-origin isolated page). float32.
 */
export async function createBackend(options: WasmOptions = {}): Promise<Backend> {
  const parsed = parseOptions(optionsSchema, options, "wasm backend");
  const threads = parsed.threads ?? (await defaultThreads());
  await kernelModule(); // compile (and in the source tree, check it is current) before claiming anything
  const cnn = createCnnOps({ threads });
  return {
    manifest: {
      name: "wasm",
      version: VERSION,
      precision: "float32",
      environment: IN_NODE ? "node" : "browser",
      device: `wasm simd128 (AssemblyScript), ${threads} thread${threads > 1 ? "s" : ""}`,
      capabilities: [...CAPABILITIES],
    },
    net222: await createNet222Ops(),
    cnn,
    dispose: () => cnn.disposeAll(),
  };
}
