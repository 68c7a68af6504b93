import { fileURLToPath } from "node:url";
import { z } from "zod";
import { BackendLoadError, loadBackend } from "@nnspec/conformance/node";
import { parseWith, type Backend } from "@nnspec/spec";

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

/** The judged PyTorch backend, found from this file so that the CLI works from any folder. */
export const PYTORCH_BACKEND_PY = fileURLToPath(new URL("../../backends/pytorch/backend.py", import.meta.url));

export const pytorchOptionsSchema = z
  .object({
    /** What backend.py offers; it defaults to float32. */
    precision: z.enum(["float32", "float64"]).optional(),
    /** torch.set_num_threads: 1 keeps a shared machine usable and the speed comparable per core. */
    threads: z.coerce.number().int().min(1).max(256).default(1),
    /** oneDNN's convolutions: a training step over 10× faster than the portable kernels on one thread. */
    onednn: z.boolean().default(true),
    python: z
      .string()
      .min(1)
      .default(process.env.NNSPEC_PYTHON ?? "/usr/bin/python3"),
  })
  .strict();
export type PytorchOptions = z.input<typeof pytorchOptionsSchema>;

/** One word of a `cmd:` line: single-quoted, so a path with blanks or quotes stays one word and needs no shell. */
const shellWord = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** The `cmd:` line the judge would be given for backends/pytorch/backend.py under this interpreter. */
export function pytorchCommand(python: string): string {
  return `cmd:${shellWord(python)} ${shellWord(PYTORCH_BACKEND_PY)}`;
}

/**
 * "pytorch": backends/pytorch/backend.py through the judge's own `cmd:` loader (pipe protocol), with oneDNN and 1
 * thread unless told otherwise. One PyTorch implementation of the contract: the PyTorch that trains is the one judged.
 */
async function loadPytorch(options: Record<string, unknown>): Promise<Backend> {
  const o = parseWith(pytorchOptionsSchema, options, "pytorch backend options");
  const hello = { threads: o.threads, onednn: o.onednn, ...(o.precision ? { precision: o.precision } : {}) };
  try {
    return await loadBackend(pytorchCommand(o.python), hello);
  } catch (err) {
    // backend.py names python3-torch itself when torch is missing; a missing interpreter gets the same hint here.
    if (err instanceof BackendLoadError && !err.message.includes("python3-torch"))
      throw new BackendLoadError(`${err.message} (needs ${o.python} with torch: Debian package python3-torch)`, {
        cause: err,
      });
    throw err;
  }
}

/**
 * Backends of the tools by short name, loaded otherwise than by package: "pytorch" is the judged PyTorch backend
 * (backends/pytorch, a program) with the training peer's settings, so `nnspec train --backend pytorch` trains it.
 */
export const TOOL_BACKENDS: Readonly<Record<string, (options: Record<string, unknown>) => Promise<Backend>>> = {
  pytorch: loadPytorch,
};

/** The judge's loader with this workspace's short names. */
export function loadWorkspaceBackend(specifier: string, options: Record<string, unknown> = {}): Promise<Backend> {
  const tool = TOOL_BACKENDS[specifier];
  if (tool) return tool(options);
  return loadBackend(specifier, options, { aliases: WORKSPACE_BACKENDS });
}
