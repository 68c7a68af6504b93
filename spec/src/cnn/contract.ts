import { SpecValidationError } from "../errors.ts";
import type { FloatArray } from "../numbers.ts";
import type { BlockName, SummaryRow } from "./architecture.ts";
import type { SgdStep } from "./optim.ts";

/** Tensors keyed by state_dict name (CNN_PARAMS / CNN_BUFFERS), flat, row-major, PyTorch layouts. */
export type CnnTensors = Record<string, FloatArray>;

export interface CnnForwardOptions {
  readonly mode: "train" | "eval";
  /** Train mode only: apply dropout with the shared mask rule (rng.ts) for this seed and training-forward number. Omitted = dropout off. */
  readonly dropout?: { readonly seed: number; readonly step: number };
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
  dispose(): Promise<void>;
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
