import { z } from "zod";
import { CAPABILITIES, packageVersion, parseOptions, type Backend } from "@nnspec/spec";
import { createCnnOps, net222Ops } from "@nnspec/tfjs-common";
import pkg from "../package.json" with { type: "json" };
import { startWebgpu } from "./runtime.ts";

/** This package's version, from its package.json (src/ and dist/ both sit one level below it). */
export const VERSION = packageVersion(pkg, "@nnspec/backend-tfjs-webgpu package.json");
export { WebGpuUnavailableError } from "@nnspec/webgpu-adapter";
export type { WebgpuRuntime } from "./runtime.ts";

const optionsSchema = z
  .object({
    /** Callers generic over backends may ask for a precision; WebGPU compute shaders run in float32 only. */
    precision: z
      .literal("float32", {
        errorMap: (_issue, ctx) => ({
          message: `${JSON.stringify(ctx.data)} is not offered (tfjs-webgpu computes in float32 only)`,
        }),
      })
      .optional(),
  })
  .strict();

export type TfjsWebgpuOptions = z.input<typeof optionsSchema>;

const IN_NODE = typeof process !== "undefined" && typeof process.versions?.node === "string";

/**
 * TensorFlow.js 4.22 on its WebGPU backend, float32, in a browser page (Chromium with --enable-unsafe-webgpu) or in
 * Node (Dawn from the `webgpu` npm package). The manifest's device names the adapter: vendor, architecture, and
 * plainly whether it is a CPU fallback (SwiftShader on a machine without a GPU).
 */
export async function createBackend(options: TfjsWebgpuOptions = {}): Promise<Backend> {
  parseOptions(optionsSchema, options, "tfjs-webgpu backend");
  const runtime = await startWebgpu();
  return {
    manifest: {
      name: "tfjs-webgpu",
      version: VERSION,
      precision: "float32",
      environment: IN_NODE ? "node" : "browser",
      device: runtime.device,
      capabilities: [...CAPABILITIES],
    },
    net222: net222Ops,
    cnn: createCnnOps({ label: "tfjs-webgpu", channelSum: "reduce" }),
  };
}
