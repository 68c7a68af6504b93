import { CAPABILITIES, packageVersion, type Backend } from "@nnspec/spec";
import pkg from "../package.json" with { type: "json" };
import { createCnnOps, net222Ops } from "@nnspec/tfjs-common";
import { startWasm } from "./runtime.ts";

/** This package's version, from its package.json (src/ and dist/ both sit one level below it). */
export const VERSION = packageVersion(pkg, "@nnspec/backend-tfjs-wasm package.json");
export { WasmBinaryNotFoundError, defaultWasmDir } from "./runtime.ts";

export interface TfjsWasmOptions {
  /** Folder with the tfjs-backend-wasm*.wasm binaries (default: the installed package's dist/). */
  readonly wasmDir?: string;
  /** XNNPACK threads (default: the machine's cores, at most 8; 1 = tfjs's own single-threaded start). */
  readonly threads?: number;
}

function parseOptions(options: Record<string, unknown>): TfjsWasmOptions {
  const { wasmDir, threads, precision, ...rest } = options;
  const unknown = Object.keys(rest);
  if (unknown.length)
    throw new Error(`tfjs-wasm backend: unknown option(s) ${unknown.join(", ")} (known: wasmDir, threads, precision)`);
  // Callers generic over backends may ask for a precision; tfjs wasm computes in float32 only.
  if (precision !== undefined && precision !== "float32")
    throw new Error(`tfjs-wasm backend: precision ${String(precision)} is not available (float32 only)`);
  if (wasmDir !== undefined && typeof wasmDir !== "string")
    throw new Error(`tfjs-wasm backend: option wasmDir must be a string, got ${typeof wasmDir}`);
  if (
    threads !== undefined &&
    !(typeof threads === "number" && Number.isInteger(threads) && threads >= 1 && threads <= 8)
  )
    throw new Error(`tfjs-wasm backend: option threads must be an integer from 1 to 8, got ${String(threads)}`);
  return { ...(wasmDir !== undefined ? { wasmDir } : {}), ...(threads !== undefined ? { threads } : {}) };
}

/**
 * TensorFlow.js 4.22 on its WebAssembly backend, in Node, float32. Every kernel runs on wasm; the conv filter
 * gradient (no wasm kernel) is a forward convolution over transposed tensors.
 */
export async function createBackend(options: Record<string, unknown> = {}): Promise<Backend> {
  const runtime = await startWasm(parseOptions(options));
  return {
    manifest: {
      name: "tfjs-wasm",
      version: VERSION,
      precision: "float32",
      environment: "node",
      device: runtime.device,
      capabilities: [...CAPABILITIES],
    },
    net222: net222Ops,
    cnn: createCnnOps({ label: "tfjs-wasm", channelSum: "pool", affineByGemm: true }),
  };
}
