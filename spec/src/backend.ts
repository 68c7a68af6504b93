import { z } from "zod";
import { precisionSchema } from "./tolerance.ts";
import type { CnnOps } from "./cnn/contract.ts";
import type { Net222Config, Weights } from "./net222/config.ts";
import type { Forward, Gradients } from "./net222/formulas.ts";
import type { StepRecord } from "./net222/trajectory.ts";

/**
 * Capabilities a backend can claim. The suite runs the checks of every claimed capability and reports every
 * other check as "not implemented" — never skipped silently, never counted as passed.
 */
export const CAPABILITIES = [
  "net222.forward", "net222.gradients", "net222.step", "net222.train",
  "cnn.forward", "cnn.backward", "cnn.step", "cnn.dropout",
] as const;
export const capabilitySchema = z.enum(CAPABILITIES);
export type Capability = z.infer<typeof capabilitySchema>;

export const manifestSchema = z.object({
  /** Short id used on the command line, e.g. "reference", "tfjs-wasm". */
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "lowercase letters, digits and dashes"),
  version: z.string(),
  precision: precisionSchema,
  /** Where it runs: "node" or "browser". */
  environment: z.enum(["node", "browser"]),
  /** Free text on the execution device/mode, e.g. "wasm simd, 1 thread", "webgl2 (SwiftShader)". */
  device: z.string(),
  capabilities: z.array(capabilitySchema),
}).strict();
export type Manifest = z.infer<typeof manifestSchema>;

/** The 2-2-2 operations. All async so GPU and browser backends fit the same contract. */
export interface Net222Ops {
  forward(config: Net222Config): Promise<Forward>;
  gradients(config: Net222Config): Promise<Gradients>;
  /** One simultaneous update from `config`'s weights; returns the new weights. */
  step(config: Net222Config, lr: number): Promise<Weights>;
  /** `steps` updates: steps + 1 records (record k holds the weights before update k+1 and the values at them). */
  train(config: Net222Config, lr: number, steps: number): Promise<StepRecord[]>;
}

export interface Backend {
  readonly manifest: Manifest;
  readonly net222?: Net222Ops;
  readonly cnn?: CnnOps;
  dispose?(): Promise<void>;
}

/** What a backend package exports: `export async function createBackend(): Promise<Backend>`. */
export interface BackendModule {
  createBackend(options?: Record<string, unknown>): Promise<Backend>;
}

export function claims(backend: Backend, capability: Capability): boolean {
  return backend.manifest.capabilities.includes(capability);
}
