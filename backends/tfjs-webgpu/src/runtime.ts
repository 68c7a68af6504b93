/// <reference types="@webgpu/types" />
import * as tf from "@tensorflow/tfjs";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import {
  requestAdapter,
  requestComputeDevice,
  WebGpuUnavailableError,
  type AcquiredAdapter,
} from "@nnspec/webgpu-adapter";

/**
 * Starting tfjs on its WebGPU backend, in a browser page or in Node, on the adapter @nnspec/webgpu-adapter finds
 * (Chromium's navigator.gpu; Dawn in Node, over the system's Vulkan driver or Chromium's SwiftShader). The backend is
 * registered here with that adapter's device rather than by tfjs-backend-webgpu's import-time factory, which only
 * exists where navigator.gpu did when the module loaded (never in Node). It never falls back to another tfjs
 * backend: without WebGPU it throws WebGpuUnavailableError naming what is missing.
 */
export interface WebgpuRuntime {
  readonly adapter: AcquiredAdapter;
  /** For the manifest, e.g. "tfjs 4.22.0 webgpu, WebGPU google/swiftshader (…), CPU fallback adapter (…), via …". */
  readonly device: string;
}

let started: WebgpuRuntime | null = null;

export async function startWebgpu(): Promise<WebgpuRuntime> {
  if (started) {
    if (tf.getBackend() !== "webgpu" && !(await tf.setBackend("webgpu")))
      throw new WebGpuUnavailableError("tfjs webgpu backend: could not switch back to webgpu");
    return started;
  }
  const adapter = await requestAdapter({ powerPreference: "high-performance" });
  const device = await requestComputeDevice(adapter.adapter, "nnspec tfjs-webgpu");
  // The import-time factory (registered in a page that had navigator.gpu) would ask for a second adapter; use ours.
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", () => new WebGPUBackend(device, (adapter.adapter as { info?: GPUAdapterInfo }).info), 3);
  // Small kernels would otherwise run on tfjs's cpu backend (all of the 2-2-2 network): results must come from WebGPU.
  tf.env().set("WEBGPU_CPU_FORWARD", false);
  // Determinism: a convolution with few output tiles (conv1's filter gradient, a long im2col GEMM) would go to a
  // split-K matmul that accumulates with atomics in whatever order invocations run, so results would change from run
  // to run. With this threshold at 0 every convolution takes the tiled Conv2DMM program, which sums in a fixed order;
  // matmuls keep their own choice (the threshold applies to them only when > 0). WEBGPU_MATMUL_PROGRAM_TYPE = packed
  // would do it too, but made a training step ~3× slower under SwiftShader.
  tf.env().set("WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL", 0);
  const ok = await tf.setBackend("webgpu").catch((e: unknown) => {
    throw new WebGpuUnavailableError(
      `tfjs webgpu backend failed to start on ${adapter.label}: ${e instanceof Error ? e.message : String(e)}`,
    );
  });
  if (!ok || tf.getBackend() !== "webgpu")
    throw new WebGpuUnavailableError(`tfjs webgpu backend did not start on ${adapter.label}`);
  started = { adapter, device: `tfjs ${tf.version.tfjs} webgpu, ${adapter.label}` };
  return started;
}
