import { CAPABILITIES, packageVersion, type Backend, type Precision } from "@nnspec/spec";
import pkg from "../package.json" with { type: "json" };
import { createCnnOps, net222Ops } from "@nnspec/tfjs-common";
import { startWebgl } from "./runtime.ts";

/** This package's version, from its package.json (src/ and dist/ both sit one level below it). */
export const VERSION = packageVersion(pkg, "@nnspec/backend-tfjs-webgl package.json");
export { WebglUnavailableError, type WebglRuntime } from "./runtime.ts";

function parseOptions(options: Record<string, unknown>): { precision?: Precision } {
  const { precision, ...rest } = options;
  const unknown = Object.keys(rest);
  if (unknown.length) throw new Error(`tfjs-webgl backend: unknown option(s) ${unknown.join(", ")} (known: precision)`);
  if (precision !== undefined && precision !== "float32" && precision !== "float16")
    throw new Error(
      `tfjs-webgl backend: precision ${String(precision)} is not available (float32 where float32 textures render, else float16)`,
    );
  return precision !== undefined ? { precision } : {};
}

/**
 * TensorFlow.js 4.22 on its WebGL backend, in a browser page. The precision is what the textures hold: float32
 * where the context renders to float32 textures, otherwise float16, declared honestly so the suite holds the
 * backend to float16 tolerance. Asking for float32 where only float16 renders is an error.
 */
export async function createBackend(options: Record<string, unknown> = {}): Promise<Backend> {
  const wanted = parseOptions(options).precision;
  const runtime = await startWebgl();
  const precision: Precision = runtime.float32Textures ? "float32" : "float16";
  if (wanted === "float32" && precision !== "float32")
    throw new Error(
      `tfjs-webgl backend: float32 asked for, but this WebGL context (${runtime.renderer}) only renders float16 textures`,
    );
  return {
    manifest: {
      name: "tfjs-webgl",
      version: VERSION,
      precision,
      environment: "browser",
      device: runtime.device,
      capabilities: [...CAPABILITIES],
    },
    net222: net222Ops,
    cnn: createCnnOps({ label: "tfjs-webgl", channelSum: "reduce" }),
  };
}
