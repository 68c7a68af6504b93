import { z } from "zod";
import { parseWith } from "./errors.ts";
import { precisionSchema } from "./tolerance.ts";
import type { CnnOps } from "./cnn/contract.ts";
import type { Net222Config, Weights } from "./net222/config.ts";
import type { Forward, Gradients } from "./net222/formulas.ts";
import type { StepRecord } from "./net222/trajectory.ts";

/**
 * Capabilities a backend can claim. The suite runs the checks of every claimed capability and reports every
 * other check as "not implemented" — never skipped silently, never counted as passed.
 */
export const NET222_CAPABILITIES = ["net222.forward", "net222.gradients", "net222.step", "net222.train"] as const;
/**
 * "cnn.optimizer-state": the model's optional `optimizerState()` / `setOptimizerState()` pair (contract.ts), so a
 * checkpoint can carry SGD momentum and a resumed run continues exactly.
 */
export const CNN_CAPABILITIES = [
  "cnn.forward",
  "cnn.backward",
  "cnn.step",
  "cnn.dropout",
  "cnn.optimizer-state",
] as const;
/** Every capability; a backend that implements the whole contract claims `[...CAPABILITIES]`. */
export const CAPABILITIES = [...NET222_CAPABILITIES, ...CNN_CAPABILITIES] as const;
export const capabilitySchema = z.enum(CAPABILITIES);
export type Capability = z.infer<typeof capabilitySchema>;

/** A package version as npm writes it (semver: 1.2.3, 1.2.3-rc.1, 1.2.3+build). */
export const packageVersionSchema = z
  .string()
  .regex(
    /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/,
    "not a semver version such as 1.2.3",
  );

/**
 * The version field of a package.json, checked. A backend puts it in its manifest by reading its own package.json,
 * so the manifest cannot drift from the version that `changeset version` writes.
 */
export function packageVersion(packageJson: unknown, source = "package.json"): string {
  return parseWith(z.object({ version: packageVersionSchema }).passthrough(), packageJson, source).version;
}

export const manifestSchema = z
  .object({
    /** Short id used on the command line, e.g. "reference", "tfjs-wasm". */
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "lowercase letters, digits and dashes"),
    version: z.string(),
    precision: precisionSchema,
    /**
     * Where it runs: "node" or "browser"; "process" for a program of any language judged over the pipe protocol
     * (protocol.ts, docs/backend-protocol.md).
     */
    environment: z.enum(["node", "browser", "process"]),
    /** Free text on the execution device/mode, e.g. "wasm simd, 1 thread", "webgl2 (SwiftShader)". */
    device: z.string(),
    capabilities: z.array(capabilitySchema),
  })
  .strict();
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
