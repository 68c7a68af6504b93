import { loadBackend } from "@nnspec/conformance/node";
import type { Backend } from "@nnspec/spec";

/**
 * This repository's backends by short name. It lives with the tools, not the judge: the published judge loads
 * backends by package name or path only.
 */
export const WORKSPACE_BACKENDS: Readonly<Record<string, string>> = {
  reference: "@nnspec/backend-reference",
  "tfjs-wasm": "@nnspec/backend-tfjs-wasm",
  gpujs: "@nnspec/backend-gpujs",
  "tfjs-webgpu": "@nnspec/backend-tfjs-webgpu",
  webgpu: "@nnspec/backend-webgpu",
  wasm: "@nnspec/backend-wasm",
};

/** What `pnpm conformance` (`nnspec conformance --all`) runs: every Node backend in each configuration it offers. */
export const WORKSPACE_RUNS: ReadonlyArray<{ readonly backend: string; readonly options: Record<string, unknown> }> = [
  { backend: "reference", options: { precision: "float64" } },
  { backend: "reference", options: { precision: "float32" } },
  { backend: "tfjs-wasm", options: {} },
  { backend: "gpujs", options: {} },
  // WebGPU in Node through Dawn: a GPU's Vulkan driver, else Chromium's SwiftShader (a CPU fallback; the manifest's
  // device says which). Their Chromium rows are found like every browser backend's (conformance.browser.test.ts).
  { backend: "tfjs-webgpu", options: {} },
  { backend: "webgpu", options: {} },
  { backend: "wasm", options: {} },
];

/**
 * Backends of the tools themselves, not packages and not judged: "pytorch" is the PyTorch peer behind the CNN
 * contract (tools/src/peer/pytorch-backend.ts), so `nnspec train --backend pytorch` trains it like any backend.
 */
export const TOOL_BACKENDS: Readonly<
  Record<string, () => Promise<{ createBackend(options?: Record<string, unknown>): Promise<Backend> }>>
> = {
  pytorch: () => import("./peer/pytorch-backend.ts"),
};

/** The judge's loader with this workspace's short names. */
export function loadWorkspaceBackend(specifier: string, options: Record<string, unknown> = {}): Promise<Backend> {
  const tool = TOOL_BACKENDS[specifier];
  if (tool) return tool().then((m) => m.createBackend(options));
  return loadBackend(specifier, options, { aliases: WORKSPACE_BACKENDS });
}
