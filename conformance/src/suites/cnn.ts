import {
  BLOCK_OUTPUTS,
  CNN_BUFFERS,
  CNN_LAYERS,
  CNN_PARAMS,
  CNN_PARAM_COUNT,
  DROPOUT_LAYERS,
  NUM_CLASSES,
  compareAfterSgdSteps,
  compareSgdUpdate,
  compareValues,
  dropoutKeeps,
  layerScale,
  summaryTable,
  toleranceFor,
  type BlockName,
  type Capability,
  type CnnForwardResult,
  type CnnModel,
  type CnnOps,
  type CnnTensors,
  type Comparison,
  type FloatArray,
  type Precision,
  type QuantityKind,
} from "@nnspec/spec";
import {
  derivativeAtSmoothCoordinate,
  loadCnnFixture,
  meanNll,
  type FixtureIO,
  type LoadedCnnFixture,
} from "@nnspec/fixtures/core";
import { memo, outcomeOf, type Check, type CheckContext, type CheckOutcome } from "../checks.ts";
import { reconcileStep1, reconcileSteps } from "./cnn-decisions.ts";

/**
 * The CNN checks, generated from PyTorch golden cases (fixtures/cnn/*.json). Per case one train-mode model is
 * created from the golden parameters and driven through forward → backward → step → forward → backward → step;
 * every check reads its piece of that one run through `memo`, so the runner's order doesn't multiply work.
 */
export interface CnnCheckOptions {
  /** When known, checks that cannot apply at this precision (finite differences need float64) are not generated. */
  readonly precision?: Precision;
  /** Where the golden files are read from (default: the file system). */
  readonly io?: FixtureIO;
}

/**
 * Parameters spot-checked by central differences: one element in each kind of layer, early, middle and late.
 * These are starting points, not choices fitted to any golden: where the loss has a kink within the stencil at
 * one, the check moves to another element of the same tensor (finite-difference.ts).
 */
const FD_SAMPLES: ReadonlyArray<readonly [string, number]> = [
  ["conv1.weight", 4],
  ["bn3.weight", 5],
  ["conv5.weight", 1234],
  ["bn9.bias", 11],
  ["fc.weight", 37],
];
/**
 * Step relative to max(1, |p|): Richardson truncation (∝ h⁴) is then far below the float64 gradient tolerance and
 * the loss rounding it magnifies (∝ 1/h) stays near 1e-9; kinks are handled by the kink test, not by h.
 */
const FD_RELATIVE_STEP = 1e-5;
/** Coordinates tried per sample before it is reported as not comparable (every one had a kink). */
const FD_TRIES = 6;

/** Feature maps that come out of BatchNorm (and ReLU/max-pool after it): scale-aware comparison, see tolerance.ts. */
const FEATURE_MAPS: ReadonlySet<BlockName> = new Set(
  BLOCK_OUTPUTS.filter((b) => b.startsWith("block") || b.startsWith("pool")),
);

const cnnOf = (ctx: CheckContext): CnnOps => {
  const ops = ctx.backend.cnn;
  if (!ops) throw new Error(`backend ${ctx.backend.manifest.name} claims CNN capabilities but has no cnn ops`);
  return ops;
};

const cmp = (
  ctx: CheckContext,
  actual: ArrayLike<number> | undefined,
  expected: ArrayLike<number>,
  kind: QuantityKind,
): Comparison => {
  if (!actual) return compareValues([], expected.length ? expected : [NaN], toleranceFor(ctx.precision, kind), kind);
  return compareValues(actual, expected, toleranceFor(ctx.precision, kind), kind);
};

/** A missing tensor or a length mismatch reads as a clear failure rather than "worst Infinity×". */
function tensorOutcome(
  label: string,
  actual: ArrayLike<number> | undefined,
  expected: ArrayLike<number>,
  c: () => Comparison,
): CheckOutcome {
  if (!actual) return { pass: false, detail: `${label}: backend returned no tensor` };
  if (actual.length !== expected.length)
    return { pass: false, detail: `${label}: backend returned ${actual.length} values, expected ${expected.length}` };
  return outcomeOf([[label, c()]]);
}

interface TrainRun {
  readonly model: CnnModel;
  readonly forward: CnnForwardResult;
  readonly buffersAfterStep1: CnnTensors;
}
interface BackwardRun {
  readonly loss: number;
  readonly gradients: CnnTensors;
}
interface StepsRun {
  readonly loss2: number;
  readonly parameters: CnnTensors;
  readonly buffers: CnnTensors;
  /** What the backend held between the steps: its parameters after step 1 and the gradients of step 2. */
  readonly parametersAfterStep1: CnnTensors;
  readonly gradients2: CnnTensors;
  /** Block outputs of the step-2 train forward (its ReLU and max-pool decisions, for cnn-decisions.ts). */
  readonly blocks2: CnnForwardResult["blocks"];
}
interface EvalRun {
  readonly evalLogProbs: FloatArray;
  readonly trainLogProbs: FloatArray;
}
interface DropoutRun {
  readonly forward: CnnForwardResult;
}

function copyGroup(g: Record<string, Float64Array>): CnnTensors {
  return Object.fromEntries(Object.entries(g).map(([k, v]) => [k, Float64Array.from(v)]));
}

/** Every check of one golden case. */
export function cnnChecksFor(f: LoadedCnnFixture, options: CnnCheckOptions = {}): Check[] {
  const base = `cnn.${f.name}`;
  const n = f.manifest.batch;
  const source = f.jsonPath;
  const checks: Check[] = [];
  const add = (id: string, capability: Capability, run: (ctx: CheckContext) => Promise<CheckOutcome>) =>
    checks.push({ id: `${base}.${id}`, capability, source, run });

  // --- shared runs (each created once per backend run) ---
  const train = (ctx: CheckContext) =>
    memo(ctx, `${base}:train`, async (): Promise<TrainRun> => {
      const model = await cnnOf(ctx).create({ parameters: copyGroup(f.parameters) });
      const forward = await model.forward(Float64Array.from(f.input), n, { mode: "train", record: true });
      return { model, forward, buffersAfterStep1: await model.buffers() };
    });
  const backward = (ctx: CheckContext) =>
    memo(ctx, `${base}:backward`, async (): Promise<BackwardRun> => {
      const { model } = await train(ctx);
      const { loss } = await model.backward(f.labels);
      return { loss, gradients: await model.gradients() };
    });
  const steps = (ctx: CheckContext) =>
    memo(ctx, `${base}:steps`, async (): Promise<StepsRun> => {
      const { model } = await train(ctx);
      await backward(ctx);
      await model.step(f.manifest.sgd);
      const parametersAfterStep1 = await model.parameters();
      const blocks2 = (await model.forward(Float64Array.from(f.input), n, { mode: "train", record: true })).blocks;
      const { loss: loss2 } = await model.backward(f.labels);
      const gradients2 = await model.gradients();
      await model.step(f.manifest.sgd);
      const run = {
        loss2,
        parameters: await model.parameters(),
        buffers: await model.buffers(),
        parametersAfterStep1,
        gradients2,
        blocks2,
      };
      await model.dispose();
      return run;
    });
  /** A model holding the golden state after two steps: eval forward, then a train forward of the same input. */
  const evalRun = (ctx: CheckContext) =>
    memo(ctx, `${base}:eval`, async (): Promise<EvalRun> => {
      const model = await cnnOf(ctx).create({
        parameters: copyGroup(f.parametersAfterStep2),
        buffers: copyGroup(f.buffersAfterStep2),
      });
      try {
        const evalLogProbs = (await model.forward(Float64Array.from(f.input), n, { mode: "eval" })).logProbs;
        const trainLogProbs = (await model.forward(Float64Array.from(f.input), n, { mode: "train" })).logProbs;
        return { evalLogProbs, trainLogProbs };
      } finally {
        await model.dispose();
      }
    });
  const dropoutSeed = f.manifest.seed;
  const dropoutRun = (ctx: CheckContext, step: number, tag = "") =>
    memo(ctx, `${base}:dropout:${step}${tag}`, async (): Promise<DropoutRun> => {
      const model = await cnnOf(ctx).create({ parameters: copyGroup(f.parameters) });
      try {
        return {
          forward: await model.forward(Float64Array.from(f.input), n, {
            mode: "train",
            record: true,
            dropout: { seed: dropoutSeed, step },
          }),
        };
      } finally {
        await model.dispose();
      }
    });

  // A recorded train-mode forward, then backward, with rates given (a recipe's setting,
  // CnnForwardOptions.dropout.rates) or dropout omitted: one run serves the forward and the gradient checks.
  const ratesRun = (ctx: CheckContext, rates: readonly number[] | null) =>
    memo(ctx, `${base}:dropout-rates:${rates?.join() ?? "off"}`, async () => {
      const model = await cnnOf(ctx).create({ parameters: copyGroup(f.parameters) });
      try {
        const forward = await model.forward(Float64Array.from(f.input), n, {
          mode: "train",
          record: true,
          ...(rates ? { dropout: { seed: dropoutSeed, step: 0, rates } } : {}),
        });
        await model.backward(f.labels);
        return { forward, gradients: await model.gradients() };
      } finally {
        await model.dispose();
      }
    });

  // --- structure ---
  add("structure.summary", "cnn.forward", async (ctx) => {
    const model = await cnnOf(ctx).create({ parameters: copyGroup(f.parameters) });
    try {
      const got = await model.summary();
      const want = summaryTable();
      const problems: string[] = [];
      if (got.length !== want.length) problems.push(`${got.length} rows, expected ${want.length}`);
      want.forEach((w, i) => {
        const g = got[i];
        const fmt = (r: typeof w) => `${r.layer} [-1, ${r.outputShape.join(", ")}] ${r.params}`;
        if (!g) return;
        if (g.layer !== w.layer || g.params !== w.params || g.outputShape.join(",") !== w.outputShape.join(","))
          problems.push(`row ${i + 1}: got ${fmt(g)}, expected ${fmt(w)}`);
      });
      const total = got.reduce((a, r) => a + r.params, 0);
      if (total !== CNN_PARAM_COUNT) problems.push(`total ${total} parameters, expected ${CNN_PARAM_COUNT}`);
      return {
        pass: problems.length === 0,
        detail: problems.length ? problems.join("; ") : `${want.length} rows match, ${total} parameters`,
      };
    } finally {
      await model.dispose();
    }
  });
  add("structure.parameters", "cnn.forward", async (ctx) => {
    const model = await cnnOf(ctx).create({ parameters: copyGroup(f.parameters) });
    try {
      const params = await model.parameters();
      const buffers = await model.buffers();
      const problems: string[] = [];
      const names = (specs: readonly { name: string; size: number }[], got: CnnTensors, what: string) => {
        const want = specs.map((s) => s.name);
        const have = Object.keys(got);
        if (have.join(",") !== want.join(","))
          problems.push(`${what} names/order ${have.join(", ")}; expected ${want.join(", ")}`);
        for (const s of specs)
          if (got[s.name] && got[s.name]!.length !== s.size)
            problems.push(`${s.name}: ${got[s.name]!.length} values, expected ${s.size}`);
      };
      names(CNN_PARAMS, params, "parameter");
      names(CNN_BUFFERS, buffers, "buffer");
      if (problems.length) return { pass: false, detail: problems.join("; ") };
      // The model must hold exactly what it was created from.
      return outcomeOf(CNN_PARAMS.map((p) => [p.name, cmp(ctx, params[p.name], f.parameters[p.name]!, "value")]));
    } finally {
      await model.dispose();
    }
  });

  // --- train-mode forward of step 1 ---
  for (const block of BLOCK_OUTPUTS) {
    const expected = f.blocks[block];
    if (!expected) continue;
    const kind: QuantityKind = FEATURE_MAPS.has(block) ? "gradient" : "value";
    add(`forward.${block}`, "cnn.forward", async (ctx) => {
      const { forward } = await train(ctx);
      const actual = block === "logProbs" ? (forward.blocks?.logProbs ?? forward.logProbs) : forward.blocks?.[block];
      return tensorOutcome(block, actual, expected, () => cmp(ctx, actual, expected, kind));
    });
  }
  add("forward.logProbs.result", "cnn.forward", async (ctx) => {
    const { forward } = await train(ctx);
    return tensorOutcome("logProbs (forward result)", forward.logProbs, f.blocks.logProbs ?? new Float64Array(0), () =>
      cmp(ctx, forward.logProbs, f.blocks.logProbs!, "value"),
    );
  });
  for (const bn of bnLayers()) {
    add(`forward.buffers.${bn}`, "cnn.forward", async (ctx) => {
      const { buffersAfterStep1 } = await train(ctx);
      return bufferOutcome(ctx, bn, buffersAfterStep1, f.buffersAfterStep1);
    });
  }

  /** The "layer-max" scale of tolerance.ts: the largest golden |gradient| over the parameter's layer. */
  const scales = new Map<string, number>();
  const gradientScale = (param: string): number => {
    const layer = CNN_PARAMS.find((q) => q.name === param)!.layer;
    let v = scales.get(layer);
    if (v === undefined) {
      v = layerScale(CNN_PARAMS.filter((q) => q.layer === layer).map((q) => f.gradients[q.name]!));
      scales.set(layer, v);
    }
    return v;
  };

  /**
   * After a failed gradient or step check only: the golden re-derived under the backend's own ReLU and max-pool
   * decisions where those differ from the golden's at near-ties (cnn-decisions.ts); null otherwise.
   */
  const reconciled1 = (ctx: CheckContext) =>
    memo(ctx, `${base}:reconciled1`, async () => reconcileStep1(f, ctx.precision, (await train(ctx)).forward.blocks));
  const reconciledSteps = (ctx: CheckContext) =>
    memo(ctx, `${base}:reconciled-steps`, async () =>
      reconcileSteps(f, ctx.precision, (await train(ctx)).forward.blocks, (await steps(ctx)).blocks2),
    );
  /** A failed outcome judged again against a re-derived golden, when there is one. */
  const secondOpinion = async (
    first: CheckOutcome,
    again: () => Promise<{ outcome: CheckOutcome; note: string } | null>,
  ): Promise<CheckOutcome> => {
    if (first.pass) return first;
    const r = await again();
    return r
      ? { ...r.outcome, detail: `${r.outcome.detail} — ${r.note} (against the golden: ${first.detail})` }
      : first;
  };

  // --- backward of step 1 ---
  add("backward.loss", "cnn.backward", async (ctx) => {
    const { loss } = await backward(ctx);
    return outcomeOf([["loss", cmp(ctx, [loss], [f.manifest.loss[0]!], "value")]]);
  });
  for (const p of CNN_PARAMS) {
    add(`backward.grad.${p.name}`, "cnn.backward", async (ctx) => {
      const { gradients } = await backward(ctx);
      const actual = gradients[p.name];
      const judge = (expected: ArrayLike<number>) =>
        tensorOutcome(`∂loss/∂${p.name}`, actual, expected, () =>
          compareValues(actual!, expected, toleranceFor(ctx.precision, "gradient"), "gradient", gradientScale(p.name)),
        );
      return secondOpinion(judge(f.gradients[p.name]!), async () => {
        const r = await reconciled1(ctx);
        return r ? { outcome: judge(r.gradients[p.name]!), note: r.note } : null;
      });
    });
  }
  if (options.precision === undefined || options.precision === "float64") {
    add("backward.finite-difference", "cnn.backward", (ctx) => finiteDifferenceCheck(ctx, f, backward, gradientScale));
  }

  // --- two SGD steps ---
  add("step.loss2", "cnn.step", async (ctx) => {
    const { loss2 } = await steps(ctx);
    const judge = (expected: number) => outcomeOf([["loss of step 2", cmp(ctx, [loss2], [expected], "value")]]);
    return secondOpinion(judge(f.manifest.loss[1]!), async () => {
      const r = await reconciledSteps(ctx);
      return r ? { outcome: judge(r.loss2), note: r.note } : null;
    });
  });
  // The optimizer on the backend's own gradients (tolerance.ts "update"): exact up to storage rounding.
  add("step.sgd-update", "cnn.step", async (ctx) => {
    const [{ gradients: g1 }, run] = await Promise.all([backward(ctx), steps(ctx)]);
    const { lr, momentum: m, weightDecay: wd } = f.manifest.sgd;
    const parts: Array<[string, Comparison]> = [];
    for (const p of CNN_PARAMS) {
      const p0 = f.parameters[p.name]!,
        p1 = run.parametersAfterStep1[p.name],
        p2 = run.parameters[p.name],
        a = g1[p.name],
        b = run.gradients2[p.name];
      if (!p1 || !p2 || !a || !b || [p1, p2, a, b].some((t) => t.length !== p.size))
        return { pass: false, detail: `${p.name}: parameters or gradients missing or of the wrong size` };
      const buf1 = Float64Array.from(p0, (v, i) => a[i]! + wd * v);
      const want1 = Float64Array.from(p0, (v, i) => v - lr * buf1[i]!);
      const want2 = Float64Array.from(p1, (v, i) => v - lr * (m * buf1[i]! + b[i]! + wd * v));
      parts.push([
        `${p.name} after step 1 (from its own gradients)`,
        compareSgdUpdate(p1, want1, [p0, p1], ctx.precision),
      ]);
      parts.push([
        `${p.name} after step 2 (from its own gradients and momentum)`,
        compareSgdUpdate(p2, want2, [p0, p1, p2], ctx.precision),
      ]);
    }
    return outcomeOf(parts);
  });
  for (const p of CNN_PARAMS) {
    add(`step.param.${p.name}`, "cnn.step", async (ctx) => {
      const { parameters } = await steps(ctx);
      const actual = parameters[p.name];
      // tolerance.ts "after SGD steps": storage rounding plus the gradient allowance carried by momentum.
      const judge = (expected: ArrayLike<number>) =>
        tensorOutcome(`${p.name} after 2 steps`, actual, expected, () =>
          compareAfterSgdSteps(actual!, expected, f.parameters[p.name]!, {
            precision: ctx.precision,
            steps: 2,
            lr: f.manifest.sgd.lr,
            momentum: f.manifest.sgd.momentum,
            gradientScale: gradientScale(p.name),
          }),
        );
      return secondOpinion(judge(f.parametersAfterStep2[p.name]!), async () => {
        const r = await reconciledSteps(ctx);
        return r ? { outcome: judge(r.parameters[p.name]!), note: r.note } : null;
      });
    });
  }
  for (const bn of bnLayers()) {
    add(`step.buffers.${bn}`, "cnn.step", async (ctx) => {
      const { buffers } = await steps(ctx);
      return secondOpinion(bufferOutcome(ctx, bn, buffers, f.buffersAfterStep2), async () => {
        const r = await reconciledSteps(ctx);
        return r ? { outcome: bufferOutcome(ctx, bn, buffers, r.buffers), note: r.note } : null;
      });
    });
  }

  // --- optimizer state: a resumed run continues exactly (two steps = one step, save, restore, one step) ---
  add("step.optimizer-state.resume", "cnn.optimizer-state", async (ctx) => {
    const { parameters: continuous } = await steps(ctx);
    const first = await cnnOf(ctx).create({ parameters: copyGroup(f.parameters) });
    let saved: { parameters: CnnTensors; buffers: CnnTensors; momentum: CnnTensors };
    try {
      if (!first.optimizerState || !first.setOptimizerState)
        return {
          pass: false,
          detail: "claims cnn.optimizer-state but the model has no optimizerState()/setOptimizerState()",
        };
      const before = await first.optimizerState();
      if (Object.keys(before).length !== 0)
        return {
          pass: false,
          detail: `optimizerState() before any step has ${Object.keys(before).length} tensor(s); expected none`,
        };
      await first.forward(Float64Array.from(f.input), n, { mode: "train" });
      await first.backward(f.labels);
      await first.step(f.manifest.sgd);
      saved = {
        parameters: await first.parameters(),
        buffers: await first.buffers(),
        momentum: await first.optimizerState(),
      };
    } finally {
      await first.dispose();
    }
    const shape = CNN_PARAMS.flatMap((p) =>
      saved.momentum[p.name]?.length === p.size
        ? []
        : [`${p.name}: ${saved.momentum[p.name]?.length ?? "no"} values, expected ${p.size}`],
    );
    if (shape.length > 0)
      return { pass: false, detail: `optimizerState() after a step: ${shape.slice(0, 3).join("; ")}` };
    // A fresh model from the saved state, momentum restored (a copy: the backend must not depend on our arrays).
    const resumed = await cnnOf(ctx).create({ parameters: saved.parameters, buffers: saved.buffers });
    try {
      await resumed.setOptimizerState!(
        Object.fromEntries(Object.entries(saved.momentum).map(([k, v]) => [k, Float64Array.from(v)])),
      );
      await resumed.forward(Float64Array.from(f.input), n, { mode: "train" });
      await resumed.backward(f.labels);
      await resumed.step(f.manifest.sgd);
      const after = await resumed.parameters();
      return outcomeOf(
        CNN_PARAMS.map((p) => [
          `${p.name} after step, save, restore, step vs two steps`,
          cmp(ctx, after[p.name], continuous[p.name]!, "value"),
        ]),
      );
    } finally {
      await resumed.dispose();
    }
  });

  // --- eval mode (golden state after two steps, so only cnn.forward is needed) ---
  add("eval.logProbs", "cnn.forward", async (ctx) => {
    const { evalLogProbs } = await evalRun(ctx);
    return tensorOutcome("eval log-probs", evalLogProbs, f.evalLogProbs, () =>
      cmp(ctx, evalLogProbs, f.evalLogProbs, "value"),
    );
  });
  add("eval.differs-from-train", "cnn.forward", async (ctx) => {
    const { evalLogProbs, trainLogProbs } = await evalRun(ctx);
    if (evalLogProbs.length !== trainLogProbs.length)
      return { pass: false, detail: `eval gave ${evalLogProbs.length} values, train ${trainLogProbs.length}` };
    // Same parameters and input: eval (running stats) and train (batch stats) must not coincide.
    const c = cmp(ctx, trainLogProbs, evalLogProbs, "value");
    return {
      pass: !c.pass,
      detail: c.pass
        ? `eval-mode log-probs equal train-mode ones within tolerance (worst ${c.worstRatio.toExponential(2)}×): eval mode must use the running statistics`
        : `eval and train log-probs differ (largest |Δ| ${c.worstAbsolute.toExponential(2)})`,
    };
  });

  // --- dropout (shared mask rule, spec/src/rng.ts) ---
  const drop3 = DROPOUT_LAYERS[DROPOUT_LAYERS.length - 1]!;
  const gapRule = (run: DropoutRun, step: number, scaled: boolean) =>
    expectedGap(run.forward, dropoutSeed, step, drop3.index, drop3.p, scaled);
  add("dropout.mask", "cnn.dropout", async (ctx) => {
    const run = await dropoutRun(ctx, 0);
    const e = gapRule(run, 0, true);
    if (typeof e === "string") return { pass: false, detail: e };
    return outcomeOf([
      [
        `gap after ${drop3.name} (mask rule, seed ${dropoutSeed}, step 0)`,
        cmp(ctx, run.forward.blocks!.gap, e, "value"),
      ],
    ]);
  });
  add("dropout.scale", "cnn.dropout", async (ctx) => {
    const run = await dropoutRun(ctx, 0);
    const unscaled = gapRule(run, 0, false);
    if (typeof unscaled === "string") return { pass: false, detail: unscaled };
    const got = run.forward.blocks!.gap!;
    const ratio = sum(got) / sum(unscaled);
    return outcomeOf([
      [`kept-value scale of ${drop3.name} (Σgap / Σmasked mean)`, cmp(ctx, [ratio], [1 / (1 - drop3.p)], "value")],
    ]);
  });
  add("dropout.rate", "cnn.dropout", async (ctx) => {
    const run = await dropoutRun(ctx, 0);
    const e = gapRule(run, 0, true);
    if (typeof e === "string") return { pass: false, detail: e };
    const c = cmp(ctx, run.forward.blocks!.gap, e, "value");
    if (!c.pass)
      return {
        pass: false,
        detail: `${drop3.name}'s mask is not the shared rule's (see dropout.mask), so its drop rate is unknown`,
      };
    return dropRateOutcome(n, dropoutSeed, 0);
  });
  add("dropout.eval-identity", "cnn.dropout", async (ctx) => {
    const model = await cnnOf(ctx).create({
      parameters: copyGroup(f.parametersAfterStep2),
      buffers: copyGroup(f.buffersAfterStep2),
    });
    try {
      const got = (
        await model.forward(Float64Array.from(f.input), n, { mode: "eval", dropout: { seed: dropoutSeed, step: 0 } })
      ).logProbs;
      return tensorOutcome("eval log-probs with dropout options", got, f.evalLogProbs, () =>
        cmp(ctx, got, f.evalLogProbs, "value"),
      );
    } finally {
      await model.dispose();
    }
  });
  add("dropout.deterministic", "cnn.dropout", async (ctx) => {
    const a = await dropoutRun(ctx, 0);
    const b = await dropoutRun(ctx, 0, ":again");
    return outcomeOf([
      ["log-probs of a second model, same seed and step", cmp(ctx, b.forward.logProbs, a.forward.logProbs, "value")],
    ]);
  });
  add("dropout.step-changes-mask", "cnn.dropout", async (ctx) => {
    const a = await dropoutRun(ctx, 0);
    const b = await dropoutRun(ctx, 1);
    const e = gapRule(b, 1, true);
    if (typeof e === "string") return { pass: false, detail: e };
    const rule = cmp(ctx, b.forward.blocks!.gap, e, "value");
    const same = cmp(ctx, b.forward.logProbs, a.forward.logProbs, "value");
    if (same.pass)
      return {
        pass: false,
        detail: "forward number 1 gave the same log-probs as forward number 0: the mask must change with the step",
      };
    return outcomeOf([[`gap after ${drop3.name} at step 1 (mask rule)`, rule]]);
  });
  add("dropout.rates", "cnn.dropout", async (ctx) => {
    const run = await ratesRun(ctx, OTHER_DROPOUT_RATES);
    const rows: [string, ReturnType<typeof cmp>][] = [];
    for (const l of DROPOUT_LAYERS) {
      const p = OTHER_DROPOUT_RATES[l.index]!;
      const e =
        l === drop3
          ? expectedGap(run.forward, dropoutSeed, 0, l.index, p, true)
          : expectedPooledDrop(run.forward, l.index, dropoutSeed, 0, p);
      if (typeof e === "string") return { pass: false, detail: e };
      const got = l === drop3 ? run.forward.blocks!.gap! : run.forward.blocks![POOL_AFTER_DROPOUT[l.index]!]!;
      rows.push([`${l.name} at rate ${p} (mask rule, seed ${dropoutSeed}, step 0)`, cmp(ctx, got, e, "value")]);
    }
    return outcomeOf(rows);
  });
  add("dropout.rates-zero", "cnn.dropout", async (ctx) => {
    const zero = await ratesRun(
      ctx,
      DROPOUT_LAYERS.map(() => 0),
    );
    const off = await ratesRun(ctx, null);
    return outcomeOf([
      [
        "train-mode log-probs, rates all 0 vs dropout omitted",
        cmp(ctx, zero.forward.logProbs, off.forward.logProbs, "value"),
      ],
    ]);
  });
  add("dropout.rates-backward", "cnn.dropout", async (ctx) => {
    // Backward must scale by the forward's rates, not the architecture's: checked where the gradient crosses a
    // dropout layer, from the backend's own forward (bn9.bias through drop3), and end to end (rates 0 = off).
    const run = await ratesRun(ctx, OTHER_DROPOUT_RATES);
    const e = expectedBn9BiasGradient(run.forward, f.parameters["fc.weight"]!, f.labels, {
      seed: dropoutSeed,
      step: 0,
      layer: drop3.index,
      p: OTHER_DROPOUT_RATES[drop3.index]!,
    });
    if (typeof e === "string") return { pass: false, detail: e };
    const zero = await ratesRun(
      ctx,
      DROPOUT_LAYERS.map(() => 0),
    );
    const off = await ratesRun(ctx, null);
    const tol = toleranceFor(ctx.precision, "gradient");
    const grad = (name: string, actual: ArrayLike<number> | undefined, expected: ArrayLike<number>) =>
      tensorOutcome(`∂loss/∂${name}`, actual, expected, () =>
        compareValues(actual!, expected, tol, "gradient", gradientScale(name)),
      );
    const rows: CheckOutcome[] = [
      grad("bn9.bias", run.gradients["bn9.bias"], e),
      ...CNN_PARAMS.map((q) => grad(q.name, zero.gradients[q.name], off.gradients[q.name] ?? [])),
    ];
    const failed = rows.find((r) => !r.pass);
    const worstRatio = Math.max(...rows.map((r) => r.worstRatio ?? 0));
    return failed
      ? {
          ...failed,
          detail: `${rows.indexOf(failed) === 0 ? `at rates ${OTHER_DROPOUT_RATES.join(", ")} vs the rule from the backend's own block9: ` : "rates 0 vs dropout omitted: "}${failed.detail}`,
        }
      : {
          pass: true,
          worstRatio,
          detail: `∂loss/∂bn9.bias at rates ${OTHER_DROPOUT_RATES.join(", ")} as the rule predicts; every gradient at rates 0 equals dropout omitted`,
        };
  });
  return checks;
}

/**
 * ∂loss/∂bn9.bias as the shared mask rule predicts it from the backend's own train-mode forward: mean NLL, so
 * ∂/∂logits = (softmax − onehot)/n; through fc (its weight [10, C]) to the GAP; through drop3 (keep · 1/(1 − p)) and
 * the 7×7 mean to block9; through ReLU (block9 > 0) to bn9's output, whose bias gradient is the sum over n, h, w.
 */
function expectedBn9BiasGradient(
  fwd: CnnForwardResult,
  fcWeight: ArrayLike<number>,
  labels: ArrayLike<number>,
  rule: { readonly seed: number; readonly step: number; readonly layer: number; readonly p: number },
): Float64Array | string {
  const b9 = fwd.blocks?.block9,
    gap = fwd.blocks?.gap;
  if (!b9 || !gap) return "a recorded forward (record: true) must return blocks block9 and gap";
  const n = labels.length,
    C = gap.length / n,
    plane = b9.length / gap.length;
  const out = new Float64Array(C);
  for (let s = 0; s < n; s++) {
    const dLogits = new Float64Array(NUM_CLASSES);
    for (let k = 0; k < NUM_CLASSES; k++)
      dLogits[k] = (Math.exp(fwd.logProbs[s * NUM_CLASSES + k]!) - (labels[s] === k ? 1 : 0)) / n;
    for (let c = 0; c < C; c++) {
      let dGap = 0;
      for (let k = 0; k < NUM_CLASSES; k++) dGap += dLogits[k]! * fcWeight[k * C + c]!;
      for (let q = 0; q < plane; q++) {
        const idx = (s * C + c) * plane + q; // NCHW flat index within the batch
        if (b9[idx]! > 0 && dropoutKeeps(rule.seed, rule.layer, rule.step, idx, rule.p))
          out[c] = out[c]! + dGap / (1 - rule.p) / plane;
      }
    }
  }
  return out;
}

/** Rates for dropout.rates: one per dropout layer, each far from the architecture's (0.2, 0.2, 0.15). */
const OTHER_DROPOUT_RATES: readonly number[] = [0.5, 0.35, 0.4];
/** The recorded output after dropout layers 0 and 1 (a pool is recorded after the dropout that follows it). */
const POOL_AFTER_DROPOUT: readonly BlockName[] = ["pool1", "pool2"];
/** The recorded input of that pool (before dropout). */
const BLOCK_BEFORE_POOL: readonly BlockName[] = ["block3", "block6"];

/**
 * pool1 / pool2 as the shared mask rule predicts them from the backend's own block3 / block6: the 2×2 max, then
 * dropout layer `layer` at rate p (kept × 1/(1 − p)). A string says what is missing.
 */
function expectedPooledDrop(
  fwd: CnnForwardResult,
  layer: number,
  seed: number,
  step: number,
  p: number,
): Float64Array | string {
  const inName = BLOCK_BEFORE_POOL[layer]!,
    outName = POOL_AFTER_DROPOUT[layer]!;
  const src = fwd.blocks?.[inName],
    out = fwd.blocks?.[outName];
  if (!src || !out) return `a recorded forward (record: true) must return blocks ${inName} and ${outName}`;
  const [c, h, w] = dropoutInputDims()[layer]!;
  const planes = out.length / (h * w); // n·c
  if (!Number.isInteger(planes) || planes % c !== 0 || src.length !== out.length * 4)
    return `${outName} has ${out.length} values and ${inName} ${src.length}: not a 2×2 pool of it`;
  const e = new Float64Array(out.length);
  const W = 2 * w;
  for (let pl = 0; pl < planes; pl++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const b = pl * 4 * h * w + 2 * y * W + 2 * x;
        const m = Math.max(src[b]!, src[b + 1]!, src[b + W]!, src[b + W + 1]!);
        const idx = pl * h * w + y * w + x; // NCHW flat index within the batch
        e[idx] = dropoutKeeps(seed, layer, step, idx, p) ? m / (1 - p) : 0;
      }
  return e;
}

function bnLayers(): string[] {
  return CNN_LAYERS.flatMap((l) => (l.type === "batchnorm2d" ? [l.name] : []));
}

function bufferOutcome(
  ctx: CheckContext,
  bn: string,
  actual: CnnTensors,
  expected: Record<string, Float64Array>,
): CheckOutcome {
  const parts: Array<[string, Comparison]> = [];
  for (const b of CNN_BUFFERS.filter((x) => x.layer === bn)) {
    const a = actual[b.name];
    if (!a) return { pass: false, detail: `${b.name}: backend returned no tensor` };
    const want = expected[b.name]!;
    if (b.role === "running_mean") {
      // tolerance.ts "spread": a batch mean is judged against the spread of what it averages.
      const variance = expected[`${bn}.running_var`]!;
      const spread = Float64Array.from(want, (v, i) => Math.abs(v) + Math.sqrt(Math.max(variance[i]!, 0)));
      parts.push([b.name, compareValues(a, want, toleranceFor(ctx.precision, "value"), "value", spread)]);
    } else parts.push([b.name, cmp(ctx, a, want, "value")]);
  }
  return outcomeOf(parts);
}

const sum = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
};

/**
 * The GAP output the shared mask rule predicts from the backend's own block9 (recorded before dropout): mean over
 * 7×7 of block9 · keep / (1 − p), or without the 1/(1 − p) when `scaled` is false. A string says what is missing.
 */
function expectedGap(
  fwd: CnnForwardResult,
  seed: number,
  step: number,
  layer: number,
  p: number,
  scaled: boolean,
): Float64Array | string {
  const b9 = fwd.blocks?.block9,
    gap = fwd.blocks?.gap;
  if (!b9 || !gap) return "a recorded forward (record: true) must return blocks block9 and gap";
  const plane = b9.length / gap.length;
  const scale = scaled ? 1 / (1 - p) : 1;
  const out = new Float64Array(gap.length);
  for (let sc = 0; sc < gap.length; sc++) {
    let s = 0;
    for (let k = 0; k < plane; k++) {
      const idx = sc * plane + k; // NCHW flat index within the batch
      if (dropoutKeeps(seed, layer, step, idx, p)) s += b9[idx]! * scale;
    }
    out[sc] = s / plane;
  }
  return out;
}

/** Fraction the rule drops at each dropout layer for this batch, within 5σ of p (binomial). */
function dropRateOutcome(n: number, seed: number, step: number): CheckOutcome {
  const shapes = layerShapesBeforeDropout();
  const lines: string[] = [];
  let pass = true,
    worst = 0;
  for (const l of DROPOUT_LAYERS) {
    const count = n * shapes[l.index]!;
    let dropped = 0;
    for (let i = 0; i < count; i++) if (!dropoutKeeps(seed, l.index, step, i, l.p)) dropped++;
    const rate = dropped / count;
    const sigma = Math.sqrt((l.p * (1 - l.p)) / count);
    const z = Math.abs(rate - l.p) / sigma;
    worst = Math.max(worst, z / 5);
    if (z > 5) pass = false;
    lines.push(`${l.name}: dropped ${dropped}/${count} = ${rate.toFixed(4)} (p ${l.p}, ${z.toFixed(2)}σ)`);
  }
  return { pass, worstRatio: worst, detail: lines.join("; ") };
}

/** Per-sample [channels, height, width] entering each dropout layer. */
function dropoutInputDims(): [number, number, number][] {
  const dims: [number, number, number][] = [];
  let c = 1,
    h = 28,
    w = 28;
  for (const l of CNN_LAYERS) {
    if (l.type === "conv2d") c = l.outChannels;
    else if (l.type === "maxpool2d") {
      h = Math.floor(h / l.size);
      w = Math.floor(w / l.size);
    } else if (l.type === "dropout") dims[l.index] = [c, h, w];
  }
  return dims;
}

/** Per-sample element count entering each dropout layer. */
function layerShapesBeforeDropout(): number[] {
  return dropoutInputDims().map(([c, h, w]) => c * h * w);
}

/**
 * The backend's gradient against central differences of its own loss (the mean NLL of its own train-mode
 * log-probs), Richardson-extrapolated, at coordinates where that loss is smooth: a coordinate whose stencil holds
 * a kink (a ReLU or max-pool switch within ±h) is passed over for another and counted, never judged
 * (finite-difference.ts). The difference is allowed the float64 gradient tolerance (layer scale) plus the
 * estimate's own error bound: a property of the estimate, not a tolerance knob.
 */
async function finiteDifferenceCheck(
  ctx: CheckContext,
  f: LoadedCnnFixture,
  backward: (ctx: CheckContext) => Promise<BackwardRun>,
  gradientScale: (param: string) => number,
): Promise<CheckOutcome> {
  if (ctx.precision !== "float64")
    return { pass: true, detail: `not applicable at ${ctx.precision}: difference quotients need a float64 loss` };
  const { gradients } = await backward(ctx);
  const tol = toleranceFor(ctx.precision, "gradient");
  const lossAt = async (name: string, index: number, delta: number) => {
    const params = copyGroup(f.parameters);
    params[name]![index]! += delta;
    const model = await cnnOf(ctx).create({ parameters: params });
    try {
      return meanNll(
        (await model.forward(Float64Array.from(f.input), f.manifest.batch, { mode: "train" })).logProbs,
        f.labels,
      );
    } finally {
      await model.dispose();
    }
  };
  const f0 = await lossAt(FD_SAMPLES[0]![0], 0, 0);
  const lines: string[] = [];
  const kinks: string[] = [];
  let pass = true,
    worstRatio = 0,
    worstRelative = 0,
    compared = 0,
    rejected = 0;
  for (const [name, start] of FD_SAMPLES) {
    const p = f.parameters[name]!;
    const r = await derivativeAtSmoothCoordinate((i, d) => lossAt(name, i, d), {
      start,
      size: p.length,
      f0,
      tries: FD_TRIES,
      stepOf: (i) => FD_RELATIVE_STEP * Math.max(1, Math.abs(p[i]!)),
    });
    rejected += r.rejected.length;
    for (const k of r.rejected)
      kinks.push(
        `${name}[${k.index}] at h ${k.step.toExponential(0)} (third difference ${k.thirdDifference.toExponential(1)} > smooth limit ${k.smoothLimit.toExponential(1)})`,
      );
    if (!r.found) {
      lines.push(`${name}: not compared, all ${r.rejected.length} stencils tried have a kink`);
      continue;
    }
    const { index, estimate, errorBound } = r.found;
    const g = gradients[name]?.[index];
    if (g === undefined) return { pass: false, detail: `${name}: backend returned no gradient element [${index}]` };
    compared++;
    const allowed = tol.atol + tol.rtol * gradientScale(name) + errorBound;
    const diff = Math.abs(g - estimate);
    const ratio = diff / allowed;
    worstRatio = Math.max(worstRatio, ratio);
    worstRelative = Math.max(worstRelative, diff / Math.max(Math.abs(estimate), Number.MIN_VALUE));
    if (!(ratio <= 1)) pass = false;
    lines.push(
      `${name}[${index}]: backward ${g.toExponential(6)}, differences ${estimate.toExponential(6)} (±${errorBound.toExponential(1)}), ${ratio.toExponential(2)}× allowed`,
    );
  }
  const summary = `${compared} coordinates compared, ${rejected} stencils passed over for a kink${kinks.length ? `: ${kinks.join(", ")}` : ""}`;
  return { pass, ...(compared > 0 ? { worstRatio, worstRelative } : {}), detail: `${summary}; ${lines.join("; ")}` };
}

/** Checks for every golden case; a bad golden file throws a SpecValidationError naming the file and field. */
export async function cnnChecks(fixturePaths: readonly string[], options: CnnCheckOptions = {}): Promise<Check[]> {
  const out: Check[] = [];
  for (const p of fixturePaths) out.push(...cnnChecksFor(await loadCnnFixture(p, options.io), options));
  return out;
}
