import { CAPABILITIES, packageVersion, type Backend } from "@nnspec/spec";
import pkg from "../package.json" with { type: "json" };
import { createCnnOps } from "./cnn/index.ts";
import { createNet222Ops } from "./net222.ts";
import { GPUJS_MODES, GpuRuntime, type GpujsMode } from "./runtime.ts";

/** This package's version, from its package.json (src/ and dist/ both sit one level below it). */
export const VERSION = packageVersion(pkg, "@nnspec/backend-gpujs package.json");
export { GPUJS_MODES, type GpujsMode } from "./runtime.ts";

export interface GpujsOptions {
  /** gpu.js mode; default "gpu" (gpu.js picks: WebGL2 in a browser, webasm in Node without headless-gl). */
  readonly mode?: GpujsMode;
  /** Kernels under gpu.js's async contract (webasm: worker-pool threads for big kernels). Default false. */
  readonly async?: boolean;
}

function parseOptions(options: Record<string, unknown>): GpujsOptions {
  const { mode, async, precision, ...rest } = options;
  const unknown = Object.keys(rest);
  if (unknown.length)
    throw new Error(`gpujs backend: unknown option(s) ${unknown.join(", ")} (known: mode, async, precision)`);
  // Callers generic over backends may ask for a precision; gpu.js computes in float32 only.
  if (precision !== undefined && precision !== "float32")
    throw new Error(`gpujs backend: precision ${String(precision)} is not available (float32 only)`);
  if (mode !== undefined && !(GPUJS_MODES as readonly unknown[]).includes(mode))
    throw new Error(`gpujs backend: option mode must be one of ${GPUJS_MODES.join(", ")}, got ${JSON.stringify(mode)}`);
  if (async !== undefined && typeof async !== "boolean")
    throw new Error(`gpujs backend: option async must be true or false, got ${JSON.stringify(async)}`);
  return { ...(mode !== undefined ? { mode: mode as GpujsMode } : {}), ...(async !== undefined ? { async } : {}) };
}

/**
 * gpu.js 2.24: the 2-2-2 network and the CNN as gpu.js kernels, float32 on every mode (single-precision
 * textures on WebGL2, f32 WebAssembly, fround-emulated on cpu). The manifest names the mode that actually ran.
 */
export async function createBackend(options: Record<string, unknown> = {}): Promise<Backend> {
  const { mode = "gpu", async = false } = parseOptions(options);
  const rt = new GpuRuntime(mode, async);
  // One tiny kernel up front: gpu.js settles its real mode (and any fallback) on the first build.
  rt.release(await rt.upload([0]));
  const environment = typeof window !== "undefined" && typeof document !== "undefined" ? "browser" : "node";
  return {
    manifest: {
      name: "gpujs",
      version: VERSION,
      precision: "float32",
      environment,
      device: `gpu.js 2.24 ${rt.mode}${async ? ", async kernels" : ""}`,
      capabilities: [...CAPABILITIES],
    },
    net222: createNet222Ops(rt),
    cnn: createCnnOps(rt),
    async dispose() {
      rt.destroy();
    },
  };
}
