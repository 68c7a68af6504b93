import {
  initBuffers, initParameters, mix32, recipeSchema, scheduleAt, shuffledIndices,
  type Backend, type CnnModel, type CnnOps, type FloatArray, type Recipe,
} from "@nnspec/spec";
import { batchLabels, normalizedBatch, type MnistData } from "../data/mnist.ts";
import type { MnistSplit } from "../data/idx.ts";
import { saveCheckpoint, type Checkpoint, type CheckpointTraining } from "./checkpoint.ts";
import { machineInfo, runRecordSchema, type EpochRecord, type RunRecord } from "./run-record.ts";

export interface TrainCnnOptions {
  readonly backend: Backend;
  readonly data: MnistData;
  readonly epochs: number;
  readonly batchSize: number;
  readonly maxLr: number;
  readonly seed: number;
  /** Train on the first `limit` images of the seed-shuffled training set. */
  readonly limit?: number;
  /** Evaluate on the first `testLimit` test images. */
  readonly testLimit?: number;
  readonly evalBatchSize?: number;
  /** Save parameters + buffers here after every epoch. */
  readonly checkpointPath?: string;
  /** Continue from this checkpoint: its recipe, seed and limit win (they define the schedule and data order). */
  readonly resume?: { readonly path: string; readonly checkpoint: Checkpoint };
}

export interface BatchProgress {
  readonly epoch: number; // 1-based
  readonly epochs: number;
  readonly batch: number; // 1-based within the epoch
  readonly batches: number;
  readonly seen: number; // images this epoch
  readonly total: number; // images per epoch
  readonly loss: number; // this batch
  readonly runningLoss: number;
  readonly runningAccuracy: number;
  readonly imagesPerSecond: number;
  readonly lr: number;
}

export interface TrainHooks {
  onEpochStart?(epoch: number, epochs: number, total: number): void;
  onBatch?(p: BatchProgress): void;
  onEvalStart?(epoch: number): void;
  onEpoch?(e: EpochRecord): void;
  onCheckpoint?(path: string): void;
}

export class TrainError extends Error {
  override name = "TrainError";
}

/** The CNN of a backend, or an error that says what the backend does offer. */
export function requireCnn(backend: Backend): CnnOps {
  if (!backend.cnn) {
    throw new TrainError(`backend ${backend.manifest.name} does not implement the CNN (capabilities: ${backend.manifest.capabilities.join(", ") || "none"})`);
  }
  return backend.cnn;
}

/** Training order of epoch `epoch` (0-based): a fresh permutation per epoch, all derived from the run seed. */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  return shuffledIndices(n, mix32((seed >>> 0) ^ mix32(epoch + 1)));
}

/** Indices of the training images used: all of them, or the first `limit` of a seed-shuffled order. */
export function trainingSubset(count: number, seed: number, limit: number | null): Uint32Array {
  if (limit === null) return Uint32Array.from({ length: count }, (_, i) => i);
  if (limit > count) throw new TrainError(`--limit ${limit} exceeds the ${count} training images`);
  return shuffledIndices(count, seed).slice(0, limit);
}

function argmaxRow(logProbs: FloatArray, row: number): number {
  let best = 0;
  let bestV = -Infinity;
  for (let c = 0; c < 10; c++) {
    const v = logProbs[row * 10 + c]!;
    if (v > bestV) { bestV = v; best = c; }
  }
  return best;
}

/** Mean NLL and accuracy on the first `limit` test images, eval mode, in batches. */
export async function evaluate(model: CnnModel, split: MnistSplit, limit: number, batchSize: number): Promise<{ loss: number; accuracy: number }> {
  let nll = 0;
  let correct = 0;
  const buf = new Float32Array(batchSize * 784);
  for (let start = 0; start < limit; start += batchSize) {
    const idx = Uint32Array.from({ length: Math.min(batchSize, limit - start) }, (_, i) => start + i);
    const { logProbs } = await model.forward(normalizedBatch(split, idx, buf), idx.length, { mode: "eval" });
    for (let r = 0; r < idx.length; r++) {
      const label = split.labels[idx[r]!]!;
      nll -= logProbs[r * 10 + label]!;
      if (argmaxRow(logProbs, r) === label) correct++;
    }
  }
  return { loss: nll / limit, accuracy: correct / limit };
}

/**
 * Train the spec CNN on MNIST with a backend: SGD + the recipe's schedule stepped per batch (scheduleAt), dropout
 * on with the run seed (dropout step = global index of the training forward), seed-shuffled order each epoch,
 * test loss/accuracy after every epoch. Returns the run record; the caller writes files and plots.
 */
export async function trainCnn(o: TrainCnnOptions, hooks: TrainHooks = {}): Promise<RunRecord> {
  const cnn = requireCnn(o.backend);
  const startedAt = new Date();
  const t0 = performance.now();
  const resumed = o.resume?.checkpoint.training;
  const recipe: Recipe = resumed?.recipe ?? recipeSchema.parse({ batchSize: o.batchSize, epochs: o.epochs, schedule: { kind: "onecycle", maxLr: o.maxLr } });
  const seed = resumed?.seed ?? o.seed;
  const limit = resumed ? resumed.limit : (o.limit ?? null);
  const testLimit = Math.min(o.testLimit ?? o.data.test.count, o.data.test.count);
  const evalBatchSize = o.evalBatchSize ?? 1000;

  if (resumed && resumed.epochsCompleted >= recipe.epochs) {
    throw new TrainError(`${o.resume!.path}: the run already completed all ${recipe.epochs} epoch(s); nothing to resume`);
  }
  const subset = trainingSubset(o.data.train.count, seed, limit);
  const n = subset.length;
  const stepsPerEpoch = Math.ceil(n / recipe.batchSize);
  const totalSteps = stepsPerEpoch * recipe.epochs;

  const model = await cnn.create(o.resume
    ? { parameters: o.resume.checkpoint.parameters, buffers: o.resume.checkpoint.buffers }
    : { parameters: initParameters(seed), buffers: initBuffers() });

  const history: EpochRecord[] = [...(resumed?.history ?? [])];
  const batchLoss: number[] = [...(resumed?.batchLoss ?? [])];
  let step = resumed?.globalStep ?? 0;
  let trainedImages = 0;
  let trainSecondsTotal = 0;
  const xBuf = new Float32Array(recipe.batchSize * 784);
  try {
    for (let epoch = resumed?.epochsCompleted ?? 0; epoch < recipe.epochs; epoch++) {
      hooks.onEpochStart?.(epoch + 1, recipe.epochs, n);
      const order = epochOrder(n, seed, epoch);
      const tEpoch = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let lr = 0;
      for (let b = 0; b < stepsPerEpoch; b++) {
        const from = b * recipe.batchSize;
        const size = Math.min(recipe.batchSize, n - from);
        const idx = new Uint32Array(size);
        for (let i = 0; i < size; i++) idx[i] = subset[order[from + i]!]!;
        const x = normalizedBatch(o.data.train, idx, xBuf);
        const labels = batchLabels(o.data.train, idx);
        const { logProbs } = await model.forward(x, size, { mode: "train", dropout: { seed, step } });
        const { loss } = await model.backward(labels);
        if (!Number.isFinite(loss)) throw new TrainError(`training diverged: loss is ${loss} at epoch ${epoch + 1}, batch ${b + 1} (step ${step})`);
        const sgd = scheduleAt(recipe, step, totalSteps, stepsPerEpoch);
        await model.step(sgd);
        lr = sgd.lr;
        step++;
        for (let r = 0; r < size; r++) if (argmaxRow(logProbs, r) === labels[r]) correct++;
        lossSum += loss * size;
        seen += size;
        batchLoss.push(loss);
        const secs = (performance.now() - tEpoch) / 1000;
        hooks.onBatch?.({
          epoch: epoch + 1, epochs: recipe.epochs, batch: b + 1, batches: stepsPerEpoch, seen, total: n, loss,
          runningLoss: lossSum / seen, runningAccuracy: correct / seen, imagesPerSecond: seen / Math.max(secs, 1e-9), lr,
        });
      }
      const trainSeconds = (performance.now() - tEpoch) / 1000;
      trainedImages += n;
      trainSecondsTotal += trainSeconds;
      hooks.onEvalStart?.(epoch + 1);
      const tEval = performance.now();
      const test = await evaluate(model, o.data.test, testLimit, evalBatchSize);
      const record: EpochRecord = {
        epoch: epoch + 1, trainLoss: lossSum / n, trainAccuracy: correct / n, testLoss: test.loss, testAccuracy: test.accuracy,
        imagesPerSecond: n / trainSeconds, trainSeconds, evalSeconds: (performance.now() - tEval) / 1000, lastLr: lr,
      };
      history.push(record);
      hooks.onEpoch?.(record);
      if (o.checkpointPath) {
        const training: CheckpointTraining = { backend: o.backend.manifest.name, recipe, seed, limit, epochsCompleted: epoch + 1, globalStep: step, history, batchLoss };
        await saveCheckpoint(o.checkpointPath, await model.parameters(), await model.buffers(), training);
        hooks.onCheckpoint?.(o.checkpointPath);
      }
    }
  } finally {
    await model.dispose();
  }
  const record: RunRecord = {
    kind: "nnspec.train-run", formatVersion: 1, backend: o.backend.manifest, recipe, seed, limit,
    testLimit: o.testLimit ?? null, trainImages: n, testImages: testLimit, evalBatchSize, stepsPerEpoch,
    resumedFrom: o.resume?.path ?? null, epochs: history, batchLoss,
    wallSeconds: (performance.now() - t0) / 1000, imagesPerSecond: trainSecondsTotal > 0 ? trainedImages / trainSecondsTotal : 0,
    startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), machine: machineInfo(),
  };
  // Validate what we produce, so a bad number (NaN accuracy…) fails here rather than in a later reader.
  return runRecordSchema.parse(record);
}
