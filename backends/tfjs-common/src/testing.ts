import { mulberry32, type CnnModel } from "@nnspec/spec";

/**
 * A seeded training batch for the tfjs backends' own training tests (leaks, determinism, kernels used), so the
 * wasm and webgl test files drive the model identically. Not part of the conformance suite.
 */
export interface TrainingKit {
  readonly x: Float32Array;
  readonly labels: number[];
  /** `steps` train-mode forward/backward/SGD steps (dropout seed 3, step index s); returns the losses. */
  trainSteps(model: CnnModel, steps: number): Promise<number[]>;
}

export function trainingKit(n: number, seed = 11): TrainingKit {
  const rand = mulberry32(seed);
  const x = Float32Array.from({ length: n * 784 }, () => rand() * 2 - 0.5);
  const labels = Array.from({ length: n }, () => Math.floor(rand() * 10));
  const sgd = { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 };
  return {
    x,
    labels,
    async trainSteps(model, steps) {
      const losses: number[] = [];
      for (let s = 0; s < steps; s++) {
        await model.forward(x, n, { mode: "train", dropout: { seed: 3, step: s } });
        losses.push((await model.backward(labels)).loss);
        await model.step(sgd);
      }
      return losses;
    },
  };
}
