import { SpecValidationError } from "../errors.ts";
import type { FloatArray } from "../numbers.ts";
import { CNN_PARAMS, type BlockName, type SummaryRow } from "./architecture.ts";
import type { SgdStep } from "./optim.ts";

/** Tensors keyed by state_dict name (CNN_PARAMS / CNN_BUFFERS), flat, row-major, PyTorch layouts. */
export type CnnTensors = Record<string, FloatArray>;

export interface CnnForwardOptions {
  readonly mode: "train" | "eval";
  /**
   * Train mode only: apply dropout with the shared mask rule (rng.ts) for this seed and training-forward number.
   * Omitted = dropout off. `rates`: one drop probability per dropout layer (DROPOUT_LAYERS order, each in [0, 1)),
   * set by a training recipe; omitted = the architecture's (dropoutRate in architecture.ts).
   */
  readonly dropout?: { readonly seed: number; readonly step: number; readonly rates?: readonly number[] };
  /** Return every named block output (conformance); training leaves it off. */
  readonly record?: boolean;
}

export interface CnnForwardResult {
  /** [n, 10] log-probabilities. */
  readonly logProbs: FloatArray;
  readonly blocks?: Partial<Record<BlockName, FloatArray>>;
}

/**
 * One CNN instance living in a backend. Train-mode forward normalises with batch statistics, updates the BN
 * running stats (momentum 0.1, unbiased running variance) and keeps what backward needs; eval mode uses the
 * running stats and keeps nothing.
 */
export interface CnnModel {
  /** The table of the backend's own model (module rows as torchsummary prints them). */
  summary(): Promise<SummaryRow[]>;
  /** x: [n, 1, 28, 28] already normalised ((x/255 − 0.1307)/0.3081). */
  forward(x: FloatArray, n: number, options: CnnForwardOptions): Promise<CnnForwardResult>;
  /**
   * Mean NLL of the last train-mode forward against `labels`; computes and keeps all parameter gradients.
   * Max-pool ties route the gradient to the first maximum in row-major window order, as PyTorch does (architecture.ts).
   */
  backward(labels: ArrayLike<number>): Promise<{ loss: number }>;
  /** Gradients from the last backward, keyed by parameter name. */
  gradients(): Promise<CnnTensors>;
  /** One SGD-with-momentum update from the last gradients (optim.ts semantics). */
  step(sgd: SgdStep): Promise<void>;
  parameters(): Promise<CnnTensors>;
  buffers(): Promise<CnnTensors>;
  /**
   * Capability "cnn.optimizer-state" (optional otherwise): the SGD momentum buffers, keyed by parameter name
   * (CNN_PARAMS names, sizes and layouts). Empty before the first step — the next step then sets buf = g.
   */
  optimizerState?(): Promise<CnnTensors>;
  /**
   * Replace the momentum buffers with `state` as `optimizerState()` returned it (from this backend or another):
   * every parameter with its size, or `{}` for "no step yet". Anything else throws and changes nothing.
   */
  setOptimizerState?(state: CnnTensors): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * The rule of `setOptimizerState`: `{}`, or exactly one finite buffer per parameter with the parameter's size.
 * Returns whether the state is empty; throws a one-line SpecValidationError from `source` otherwise.
 */
export function validateOptimizerState(state: CnnTensors, source: string): "empty" | "full" {
  const names = Object.keys(state);
  if (names.length === 0) return "empty";
  const fail = (problem: string): never => {
    throw new SpecValidationError(source, [`optimizer state: ${problem}`], { oneLine: true });
  };
  const known = new Map(CNN_PARAMS.map((p) => [p.name, p.size]));
  for (const n of names) if (!known.has(n)) fail(`unknown parameter "${n}"`);
  for (const p of CNN_PARAMS) {
    const t = state[p.name];
    if (!t) fail(`momentum of "${p.name}" is missing`);
    if (t!.length !== p.size) fail(`momentum of "${p.name}" has ${t!.length} values, expected ${p.size}`);
    for (let i = 0; i < t!.length; i++) if (!Number.isFinite(t![i]!)) fail(`momentum of "${p.name}"[${i}] is ${t![i]}`);
  }
  return "full";
}

export interface CnnOps {
  /** A model from given parameters (and optional BN buffers; fresh ones otherwise). */
  create(init: { parameters: CnnTensors; buffers?: CnnTensors }): Promise<CnnModel>;
}

/**
 * The labels rule of CnnModel.backward: one label per image of the batch, each an integer class in 0..classes − 1.
 * Throws a one-line SpecValidationError from `source` (e.g. "reference CNN") naming the first bad label.
 */
export function validateLabels(labels: ArrayLike<number>, n: number, classes: number, source: string): void {
  const fail = (problem: string): never => {
    throw new SpecValidationError(source, [problem], { oneLine: true });
  };
  if (labels.length !== n) fail(`${labels.length} labels for a batch of ${n}`);
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= classes) fail(`labels[${i}] = ${y} is not a class in 0..${classes - 1}`);
  }
}
