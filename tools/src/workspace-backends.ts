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
};

/** What `pnpm conformance` (`nnspec conformance --all`) runs: every Node backend in each configuration it offers. */
export const WORKSPACE_RUNS: ReadonlyArray<{ readonly backend: string; readonly options: Record<string, unknown> }> = [
  { backend: "reference", options: { precision: "float64" } },
  { backend: "reference", options: { precision: "float32" } },
  { backend: "tfjs-wasm", options: {} },
  { backend: "gpujs", options: {} },
];

/** The judge's loader with this workspace's short names. */
export function loadWorkspaceBackend(specifier: string, options: Record<string, unknown> = {}): Promise<Backend> {
  return loadBackend(specifier, options, { aliases: WORKSPACE_BACKENDS });
}
