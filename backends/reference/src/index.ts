import type { Backend, Capability } from "@nnspec/spec";
import { net222Ops } from "./net222.ts";

export const VERSION = "0.1.0";

/**
 * The reference backend: pure TypeScript, no dependencies beyond spec. The 2-2-2 network runs in float64;
 * the CNN trains on Float32Array and has a float64 twin (`precision: "float64"`) used to check it against
 * PyTorch's float64 goldens at float64 tolerance.
 */
export async function createBackend(options: { precision?: "float32" | "float64" } = {}): Promise<Backend> {
  const precision = options.precision ?? "float64";
  const capabilities: Capability[] = ["net222.forward", "net222.gradients", "net222.step", "net222.train"];
  return {
    manifest: { name: "reference", version: VERSION, precision, environment: "node", device: "cpu, pure TypeScript", capabilities },
    net222: net222Ops,
  };
}
