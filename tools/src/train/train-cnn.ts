import {
  augmentationOf,
  CNN_BUFFERS,
  CNN_PARAMS,
  claims,
  initBuffers,
  initParameters,
  mix32,
  parseWith,
  recipeSchema,
  scheduleAt,
  shuffledIndices,
  type Backend,
  type CnnModel,
  type CnnOps,
  type FloatArray,
  type Recipe,
} from "@nnspec/spec";
import { batchLabels, normalizedBatch, type MnistData } from "../data/mnist.ts";
import { trainingBatch } from "../data/augment.ts";
import type { MnistSplit } from "../data/idx.ts";
import {
  firstNonFinite,
  saveCheckpoint,
  type Checkpoint,
  type CheckpointTraining,
  type PartialEpoch,
} from "./checkpoint.ts";
import {
  machineInfo,
  runRecordSchema,
  segmentLabel,
  type EpochRecord,
  type RunRecord,
  type RunStop,
  type Segment,
} from "./run-record.ts";

export interface TrainCnnOptions {
  readonly backend: Backend;
  readonly data: MnistData;
  readonly epochs: number;
  readonly batchSize: number;
  readonly maxLr: number;
  /** The whole recipe (named or from a file): when given, it wins over epochs, batchSize and maxLr. */
  readonly recipe?: Recipe;
  readonly seed: number;
  /** Train on the first `limit` images of the seed-shuffled training set. */
  readonly limit?: number;
  /** Evaluate on the first `testLimit` test images. */
  readonly testLimit?: number;
  readonly evalBatchSize?: number;
  /** Save parameters, buffers and momentum here after every epoch (and where an interruption stops the run). */
  readonly checkpointPath?: string;
  /**
   * Continue from this checkpoint: its recipe, seed, limit and evaluation settings win (they define the run).
   * Without saved momentum (or a backend that cannot take it) only `restartMomentum` lets it start, from zero.
   */
  readonly resume?: { readonly path: string; readonly checkpoint: Checkpoint; readonly restartMomentum?: boolean };
  /** What --backend named and its options, saved so that --resume loads the same backend again. */
  readonly backendSpecifier?: string;
  readonly backendOptions?: Record<string, string>;
  /** Polled after every batch: true stops the run cleanly (status "interrupted"). */
  readonly shouldStop?: () => boolean;
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
  /** The run ends (finished or not): a progress bar must go. */
  onStop?(): void;
}

export class TrainError extends Error {
  override name = "TrainError";
}

/** The CNN of a backend, or an error that says what the backend does offer. */
export function requireCnn(backend: Backend): CnnOps {
  if (!backend.cnn) {
    throw new TrainError(
      `backend ${backend.manifest.name} does not implement the CNN (capabilities: ${backend.manifest.capabilities.join(", ") || "none"})`,
    );
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
    if (v > bestV) {
      bestV = v;
      best = c;
    }
  }
  return best;
}

/** Mean NLL and accuracy on the first `limit` test images, eval mode, in batches; null if `shouldStop` said so. */
export async function evaluate(
  model: CnnModel,
  split: MnistSplit,
  limit: number,
  batchSize: number,
  shouldStop?: () => boolean,
): Promise<{ loss: number; accuracy: number } | null> {
  let nll = 0;
  let correct = 0;
  const buf = new Float32Array(Math.min(batchSize, limit) * 784);
  for (let start = 0; start < limit; start += batchSize) {
    if (shouldStop?.()) return null;
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

const PARAM_NAMES = CNN_PARAMS.map((p) => p.name);
const BUFFER_NAMES = CNN_BUFFERS.map((b) => b.name);

/** Whether the backend can hand out and take back its SGD momentum (capability cnn.optimizer-state). */
export function hasOptimizerState(backend: Backend, model?: CnnModel): boolean {
  return (
    claims(backend, "cnn.optimizer-state") &&
    (!model || (typeof model.optimizerState === "function" && typeof model.setOptimizerState === "function"))
  );
}

/**
 * Train the spec CNN on MNIST with a backend: SGD + the recipe's schedule stepped per batch (scheduleAt), dropout
 * on with the run seed (dropout step = global index of the training forward), seed-shuffled order each epoch,
 * test loss/accuracy after every epoch. Returns the run record; the caller writes files and plots.
 *
 * Every step checks the loss, the gradients and the updated parameters (a sum per tensor): the first non-finite
 * value stops the run at once ("diverged", nothing more is saved, the last good checkpoint stays). `shouldStop` is
 * polled after every batch and evaluation batch: it stops the run after the current batch ("interrupted") with a
 * checkpoint of exactly that point, so a resume continues as if nothing had happened.
 */
export async function trainCnn(o: TrainCnnOptions, hooks: TrainHooks = {}): Promise<RunRecord> {
  const cnn = requireCnn(o.backend);
  const m = o.backend.manifest;
  const startedAt = new Date();
  const t0 = performance.now();
  const ck = o.resume?.checkpoint;
  const resumed = ck?.training;
  const recipe: Recipe =
    resumed?.recipe ??
    o.recipe ??
    recipeSchema.parse({ batchSize: o.batchSize, epochs: o.epochs, schedule: { kind: "onecycle", maxLr: o.maxLr } });
  const augmentation = augmentationOf(recipe);
  const seed = resumed?.seed ?? o.seed;
  const limit = resumed ? resumed.limit : (o.limit ?? null);
  // A resume keeps the run's evaluation settings (formatVersion 1 did not record them: the options then).
  const testLimit = resumed && ck.settingsRecorded ? resumed.testLimit : (o.testLimit ?? null);
  const evalBatchSize = resumed && ck.settingsRecorded ? resumed.evalBatchSize : (o.evalBatchSize ?? 1000);
  const testImages = Math.min(testLimit ?? o.data.test.count, o.data.test.count);

  const subset = trainingSubset(o.data.train.count, seed, limit);
  const n = subset.length;
  const stepsPerEpoch = Math.ceil(n / recipe.batchSize);
  const totalSteps = stepsPerEpoch * recipe.epochs;
  let partial: PartialEpoch | null = resumed?.partialEpoch ?? null;
  if (resumed) {
    if (resumed.epochsCompleted >= recipe.epochs)
      throw new TrainError(
        `${o.resume!.path}: the run already completed all ${recipe.epochs} epoch(s); nothing to resume`,
      );
    const expected = resumed.epochsCompleted * stepsPerEpoch + (partial?.batchesDone ?? 0);
    if (resumed.globalStep !== expected || (partial && partial.batchesDone > stepsPerEpoch)) {
      throw new TrainError(
        `${o.resume!.path}: step ${resumed.globalStep} does not fit ${resumed.epochsCompleted} epoch(s) of ${stepsPerEpoch} batches${partial ? ` + ${partial.batchesDone}` : ""} (inconsistent checkpoint)`,
      );
    }
  }

  const model = await cnn.create(
    ck
      ? { parameters: ck.parameters, buffers: ck.buffers }
      : { parameters: initParameters(seed), buffers: initBuffers() },
  );

  const history: EpochRecord[] = [...(resumed?.history ?? [])];
  const batchLoss: number[] = [...(resumed?.batchLoss ?? [])];
  let step = resumed?.globalStep ?? 0;
  let momentum: Segment["momentum"] = "fresh";
  const withState = hasOptimizerState(o.backend, model);
  const segments: Segment[] = [...(resumed?.segments ?? [])];
  const segment: Segment = {
    backend: m.name,
    version: m.version,
    precision: m.precision,
    fromStep: step,
    toStep: step,
    momentum,
    resumedFrom: o.resume?.path ?? null,
  };
  let lastCheckpoint: RunRecord["checkpoint"] = ck
    ? { path: o.resume!.path, epochsCompleted: resumed!.epochsCompleted, globalStep: resumed!.globalStep }
    : null;
  let stop: RunStop | null = null;
  let trainedImages = 0;
  let trainSecondsTotal = 0;
  const xBuf = new Float32Array(Math.min(recipe.batchSize, n) * 784);

  /** Save exactly this point (an epoch boundary, or inside an epoch); false if a buffer went non-finite instead. */
  const save = async (epochsCompleted: number, partialEpoch: PartialEpoch | null): Promise<boolean> => {
    if (!o.checkpointPath) return true;
    const state = {
      parameters: await model.parameters(),
      buffers: await model.buffers(),
      momentum: withState ? await model.optimizerState!() : null,
    };
    const bad =
      firstNonFinite(state.buffers, BUFFER_NAMES, "buffer") ??
      (state.momentum ? firstNonFinite(state.momentum, PARAM_NAMES, "momentum") : null);
    if (bad) return false;
    const training: CheckpointTraining = {
      backend: m.name,
      precision: m.precision,
      backendSpecifier: o.backendSpecifier ?? m.name,
      backendOptions: o.backendOptions ?? {},
      recipe,
      seed,
      limit,
      testLimit,
      evalBatchSize,
      epochsCompleted,
      globalStep: step,
      partialEpoch,
      history,
      batchLoss,
      segments: [...segments, segment],
    };
    await saveCheckpoint(o.checkpointPath, state, training);
    lastCheckpoint = { path: o.checkpointPath, epochsCompleted, globalStep: step };
    hooks.onCheckpoint?.(o.checkpointPath);
    return true;
  };

  try {
    if (ck) {
      if (ck.momentum !== null && withState) {
        await model.setOptimizerState!(ck.momentum);
        momentum = "restored";
      } else if (o.resume!.restartMomentum) {
        momentum = "restarted";
      } else {
        throw new TrainError(
          ck.momentum === null
            ? `${o.resume!.path}: the checkpoint holds no SGD momentum; resume with --restart-momentum to restart it from zero`
            : `backend ${m.name} cannot restore SGD momentum (no cnn.optimizer-state); resume with --restart-momentum to restart it from zero`,
        );
      }
      segment.momentum = momentum;
    }
    epochs: for (let epoch = resumed?.epochsCompleted ?? 0; epoch < recipe.epochs; epoch++) {
      const acc: PartialEpoch = partial
        ? { ...partial }
        : { batchesDone: 0, lossSum: 0, correct: 0, seen: 0, trainSeconds: 0, lastLr: 0 };
      partial = null;
      hooks.onEpochStart?.(epoch + 1, recipe.epochs, n);
      const order = epochOrder(n, seed, epoch);
      const diverged = (batch: number | null, detail: string) => {
        stop = { reason: "diverged", epoch: epoch + 1, batch, step, detail };
      };
      // The recipe's dropout rates go with every training forward; absent, the backend uses the architecture's.
      const dropoutAt = (step: number) => (recipe.dropout ? { seed, step, rates: recipe.dropout } : { seed, step });
      for (let b = acc.batchesDone; b < stepsPerEpoch; b++) {
        const tBatch = performance.now();
        const from = b * recipe.batchSize;
        const size = Math.min(recipe.batchSize, n - from);
        const idx = new Uint32Array(size);
        for (let i = 0; i < size; i++) idx[i] = subset[order[from + i]!]!;
        // Augmented (by the recipe, seeded per image and epoch) and normalised: the same bytes for every backend.
        const x = trainingBatch(o.data.train, idx, { augmentation, seed, epoch }, xBuf);
        const labels = batchLabels(o.data.train, idx);
        const { logProbs } = await model.forward(x, size, { mode: "train", dropout: dropoutAt(step) });
        const { loss } = await model.backward(labels);
        const badGrad = firstNonFinite(await model.gradients(), PARAM_NAMES, "gradient");
        if (!Number.isFinite(loss) || badGrad) {
          diverged(
            b + 1,
            `${Number.isFinite(loss) ? `loss ${loss}` : `loss is ${loss}`}; first non-finite: ${badGrad ?? "none (every gradient is finite)"}; parameters before the step are finite`,
          );
          break epochs;
        }
        const sgd = scheduleAt(recipe, step, totalSteps, stepsPerEpoch);
        await model.step(sgd);
        // BatchNorm's running statistics are state too (eval mode reads them): checked with the parameters.
        const badParam =
          firstNonFinite(await model.parameters(), PARAM_NAMES, "parameter") ??
          firstNonFinite(await model.buffers(), BUFFER_NAMES, "buffer");
        if (badParam) {
          diverged(
            b + 1,
            `after the SGD step (lr ${sgd.lr.toExponential(3)}), first non-finite ${badParam}; the loss was ${loss}`,
          );
          break epochs;
        }
        step++;
        segment.toStep = step;
        let correct = 0;
        for (let r = 0; r < size; r++) if (argmaxRow(logProbs, r) === labels[r]) correct++;
        const secs = (performance.now() - tBatch) / 1000;
        Object.assign(acc, {
          batchesDone: b + 1,
          lossSum: acc.lossSum + loss * size,
          correct: acc.correct + correct,
          seen: acc.seen + size,
          trainSeconds: acc.trainSeconds + secs,
          lastLr: sgd.lr,
        });
        trainedImages += size;
        trainSecondsTotal += secs;
        batchLoss.push(loss);
        hooks.onBatch?.({
          epoch: epoch + 1,
          epochs: recipe.epochs,
          batch: b + 1,
          batches: stepsPerEpoch,
          seen: acc.seen,
          total: n,
          loss,
          runningLoss: acc.lossSum / acc.seen,
          runningAccuracy: acc.correct / acc.seen,
          imagesPerSecond: acc.seen / Math.max(acc.trainSeconds, 1e-9),
          lr: sgd.lr,
        });
        if (o.shouldStop?.() && b + 1 < stepsPerEpoch) {
          if (!(await save(epoch, acc))) diverged(b + 1, "a BatchNorm buffer or momentum went non-finite");
          else
            stop = { reason: "interrupted", epoch: epoch + 1, batch: b + 1, step, detail: "stopped after this batch" };
          break epochs;
        }
      }
      hooks.onEvalStart?.(epoch + 1);
      const tEval = performance.now();
      const test = await evaluate(model, o.data.test, testImages, evalBatchSize, o.shouldStop);
      if (test === null) {
        // Interrupted while evaluating: the epoch's training is done, its evaluation runs again on resume.
        if (!(await save(epoch, acc))) diverged(null, "a BatchNorm buffer or momentum went non-finite");
        else
          stop = {
            reason: "interrupted",
            epoch: epoch + 1,
            batch: null,
            step,
            detail: "stopped during the evaluation after the epoch's last batch",
          };
        break;
      }
      if (!Number.isFinite(test.loss)) {
        diverged(null, `test loss after the epoch is ${test.loss} (parameters and BatchNorm buffers finite)`);
        break;
      }
      const epochFrom = epoch * stepsPerEpoch;
      const trainedBy = [
        ...new Set(
          [...segments, segment]
            .filter((s) => s.fromStep < epochFrom + stepsPerEpoch && s.toStep > epochFrom)
            .map(segmentLabel),
        ),
      ];
      const record: EpochRecord = {
        epoch: epoch + 1,
        trainLoss: acc.lossSum / n,
        trainAccuracy: acc.correct / n,
        testLoss: test.loss,
        testAccuracy: test.accuracy,
        imagesPerSecond: n / Math.max(acc.trainSeconds, 1e-9),
        trainSeconds: acc.trainSeconds,
        evalSeconds: (performance.now() - tEval) / 1000,
        lastLr: acc.lastLr,
        trainedBy,
      };
      history.push(record);
      hooks.onEpoch?.(record);
      if (!(await save(epoch + 1, null))) {
        history.pop();
        diverged(null, "a BatchNorm buffer or momentum went non-finite by the end of the epoch");
        break;
      }
      if (o.shouldStop?.() && epoch + 1 < recipe.epochs) {
        stop = {
          reason: "interrupted",
          epoch: epoch + 1,
          batch: null,
          step,
          detail: "stopped at the end of the epoch",
        };
        break;
      }
    }
  } finally {
    hooks.onStop?.();
    await model.dispose();
  }
  const finalStop = stop as RunStop | null;
  const record: RunRecord = {
    kind: "nnspec.train-run",
    formatVersion: 2,
    status: finalStop ? finalStop.reason : "complete",
    stop: finalStop,
    backend: m,
    recipe,
    seed,
    limit,
    testLimit,
    trainImages: n,
    testImages,
    evalBatchSize,
    stepsPerEpoch,
    resumedFrom: o.resume?.path ?? null,
    segments: [...segments, segment],
    epochs: history,
    batchLoss,
    checkpoint: lastCheckpoint,
    wallSeconds: (performance.now() - t0) / 1000,
    imagesPerSecond: trainSecondsTotal > 0 ? trainedImages / trainSecondsTotal : 0,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: machineInfo(),
  };
  // Validate what we produce, so a bad number fails here rather than in a later reader.
  return parseWith(runRecordSchema, record, "run.json (about to be written)");
}
