/// <reference types="@webgpu/types" />
import { z } from "zod";
import { CAPABILITIES, packageVersion, parseOptions, type Backend } from "@nnspec/spec";
import { requestAdapter, requestComputeDevice } from "@nnspec/webgpu-adapter";
import pkg from "../package.json" with { type: "json" };
import { createCnnOps } from "./cnn.ts";
import { Gpu } from "./gpu.ts";
import { WebGpuNet222 } from "./net222.ts";
import { SHADERS } from "./shaders.ts";

/** This package's version, from its package.json (src/ and dist/ both sit one level below it). */
export const VERSION = packageVersion(pkg, "@nnspec/backend-webgpu package.json");
export { WebGpuUnavailableError } from "@nnspec/webgpu-adapter";
export { Gpu, GpuError } from "./gpu.ts";
export { SHADERS } from "./shaders.ts";

const optionsSchema = z
  .object({
    /** Callers generic over backends may ask for a precision; these shaders compute in float32 (WGSL f32) only. */
    precision: z
      .literal("float32", {
        errorMap: (_issue, ctx) => ({
          message: `${JSON.stringify(ctx.data)} is not offered (the webgpu backend computes in float32 only)`,
        }),
      })
      .optional(),
    /** GPURequestAdapterOptions.powerPreference (default: the browser's or Dawn's choice). */
    powerPreference: z.enum(["low-power", "high-performance"]).optional(),
  })
  .strict();

export type WebgpuOptions = z.input<typeof optionsSchema>;

const IN_NODE = typeof process !== "undefined" && typeof process.versions?.node === "string";

const devices = new WeakMap<Backend, Gpu>();
/** The device layer of a backend made by createBackend (submit count, device), for tests and diagnostics. */
export function gpuOf(backend: Backend): Gpu | undefined {
  return devices.get(backend);
}

/**
 * The 2-2-2 network and the CNN as hand-written WGSL compute shaders, float32, on a WebGPU device: Chromium's
 * navigator.gpu (--enable-unsafe-webgpu), or Dawn (the `webgpu` npm package) in Node. The manifest's device names the
 * adapter and says plainly when it is a CPU fallback (SwiftShader).
 */
export async function createBackend(options: WebgpuOptions = {}): Promise<Backend> {
  const { powerPreference } = parseOptions(optionsSchema, options, "webgpu backend");
  const acquired = await requestAdapter(powerPreference ? { powerPreference } : {});
  const device = await requestComputeDevice(acquired.adapter, "nnspec webgpu");
  const gpu = new Gpu(device, "webgpu backend");
  try {
    await Promise.all(Object.entries(SHADERS).map(([name, code]) => gpu.compile(name, code)));
  } catch (e) {
    device.destroy();
    throw e;
  }
  const net222 = new WebGpuNet222(gpu);
  const backend: Backend = {
    manifest: {
      name: "webgpu",
      version: VERSION,
      precision: "float32",
      environment: IN_NODE ? "node" : "browser",
      device: `WGSL compute shaders, ${acquired.label}`,
      capabilities: [...CAPABILITIES],
    },
    net222,
    cnn: createCnnOps(gpu, "webgpu"),
    async dispose() {
      await gpu.flush().catch(() => undefined);
      net222.dispose();
      device.destroy();
    },
  };
  devices.set(backend, gpu);
  return backend;
}
