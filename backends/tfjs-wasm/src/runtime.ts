import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { availableParallelism } from "node:os";
import { startThreadedWasm } from "./threaded-node.ts";
import { registerConv2dFilterGrad } from "./conv-filter-grad-kernel.ts";

/**
 * Starting the tfjs WebAssembly backend in Node. The binaries ship inside @tensorflow/tfjs-backend-wasm's dist
 * folder; we point tfjs at that folder explicitly (emscripten's own guess is relative to the bundle and breaks
 * under tsx/vitest) and check the file exists first, because a failed load only surfaces as a vague abort.
 */
export interface WasmRuntimeOptions {
  /** Folder holding tfjs-backend-wasm*.wasm; default: the installed package's dist/. */
  readonly wasmDir?: string;
  /** XNNPACK thread-pool size (default: the machine's cores, at most 8); 1 = tfjs's single-threaded SIMD build. */
  readonly threads?: number;
}

export interface WasmRuntime {
  readonly simd: boolean;
  readonly threads: number;
  readonly binary: string;
  /** For the manifest, e.g. "tfjs 4.22.0 wasm, SIMD on, 1 thread". */
  readonly device: string;
}

export class WasmBinaryNotFoundError extends Error {
  override name = "WasmBinaryNotFoundError";
}

const BINARIES = {
  plain: "tfjs-backend-wasm.wasm",
  simd: "tfjs-backend-wasm-simd.wasm",
  threadedSimd: "tfjs-backend-wasm-threaded-simd.wasm",
} as const;

/** dist/ of the installed @tensorflow/tfjs-backend-wasm, resolved from this package. */
export function defaultWasmDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
}

let started: { runtime: WasmRuntime; wasmDir: string } | null = null;

function binaryName(simd: boolean, threaded: boolean): string {
  if (simd && threaded) return BINARIES.threadedSimd;
  return simd ? BINARIES.simd : BINARIES.plain;
}

/**
 * Initialise tfjs on the wasm backend once per process and make it the active backend. No other tfjs backend
 * is ever initialised: the cpu backend registered by @tensorflow/tfjs stays a lazy factory.
 */
export async function startWasm(options: WasmRuntimeOptions = {}): Promise<WasmRuntime> {
  const wasmDir = options.wasmDir ?? defaultWasmDir();
  if (started) {
    if (options.wasmDir !== undefined && wasmDir !== started.wasmDir)
      throw new Error(
        `tfjs wasm is already running from ${started.wasmDir}; it cannot be restarted from ${wasmDir} in the same process`,
      );
    if (tf.getBackend() !== "wasm") await tf.setBackend("wasm");
    return started.runtime;
  }
  const simd = (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) === true;
  // Threads by default on every core; tfjs itself would run one (see threaded-node.ts).
  const wanted = options.threads ?? Math.min(8, availableParallelism());
  const threaded = simd && wanted > 1 && typeof SharedArrayBuffer === "function";
  const binary = join(wasmDir, binaryName(simd, threaded));
  if (!existsSync(binary))
    throw new WasmBinaryNotFoundError(
      `tfjs wasm backend: WebAssembly binary not found: looked for ${binary} (SIMD ${simd ? "on" : "off"}); pass wasmDir pointing at @tensorflow/tfjs-backend-wasm/dist`,
    );
  let threads = 1;
  if (threaded) {
    threads = (await startThreadedWasm(wasmDir, wanted)).threads;
  } else {
    setWasmPaths(wasmDir.endsWith("/") ? wasmDir : `${wasmDir}/`);
    const ok = await tf.setBackend("wasm");
    if (!ok || tf.getBackend() !== "wasm") throw new Error(`tfjs wasm backend failed to initialise from ${binary}`);
  }
  registerConv2dFilterGrad();
  const runtime: WasmRuntime = {
    simd,
    threads,
    binary,
    device: `tfjs ${tf.version.tfjs} wasm (${binaryName(simd, threaded)}), SIMD ${simd ? "on" : "off"}, ${threads} thread${threads === 1 ? "" : "s"}`,
  };
  started = { runtime, wasmDir };
  return runtime;
}
