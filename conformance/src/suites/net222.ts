import {
  compareAfterSgdSteps,
  compareValues,
  forward as forwardAt,
  FORWARD_NAMES,
  gradients as gradientsAt,
  net222GradientScales,
  NET222_LAYERS,
  toleranceFor,
  WEIGHT_NAMES,
  type Comparison,
  type Gradients,
  type Net222Config,
  type Net222Fixture,
  type Precision,
  type StepRecord,
  type WeightName,
} from "@nnspec/spec";
import { loadNet222Fixture, type FixtureIO } from "@nnspec/fixtures/core";
import { memo, outcomeOf, type Check, type CheckContext } from "../checks.ts";

const pick = (r: Record<string, number>, names: readonly string[]) => names.map((n) => r[n]!);

function configAt(f: Net222Fixture, rec: StepRecord): Net222Config {
  return { ...f.config, ...rec.weights };
}

/** The golden's gradient scales at a record's weights (tolerance.ts "terms", spec gradientScales). */
const scalesAt = (precision: Precision, f: Net222Fixture, rec: StepRecord): Gradients =>
  net222GradientScales(precision, configAt(f, rec), rec.forward);

/** One step's eight gradients, per layer, each against the size of its terms at the golden's weights. */
function compareGradients(
  precision: Precision,
  actual: Gradients,
  expected: Gradients,
  scales: Gradients,
  label: string,
): Array<[string, Comparison]> {
  const tol = toleranceFor(precision, "gradient");
  return Object.entries(NET222_LAYERS).map(([layer, names]): [string, Comparison] => [
    `${label} ∂E/∂{${names.join(",")}} (${layer} layer)`,
    compareValues(pick(actual, names), pick(expected, names), tol, "gradient", pick(scales, names)),
  ]);
}

/** Weights after one plain gradient step from `from` (tolerance.ts "after SGD steps", momentum 0). */
function compareStep(
  precision: Precision,
  actual: Record<WeightName, number>,
  expected: Record<WeightName, number>,
  from: StepRecord,
  scales: Gradients,
  lr: number,
): Array<[string, Comparison]> {
  return Object.values(NET222_LAYERS).map((names): [string, Comparison] => [
    `${names.join(",")} after one step`,
    compareAfterSgdSteps(pick(actual, names), pick(expected, names), pick(from.weights, names), {
      precision,
      steps: 1,
      lr,
      momentum: 0,
      gradientScale: pick(scales, names),
    }),
  ]);
}

/**
 * Compare whole trajectories. Weights: each weight over all steps against the golden, elementwise (a float32
 * trajectory drifts a little from the float64 one; that drift is judged here, once). Forward values and
 * gradients: each record against the contract's formulas AT THE BACKEND'S OWN WEIGHTS of that record — the
 * golden generator's functions, evaluated where the backend actually is — so they are judged by the rounding of
 * one evaluation, not by the drift of the path (which would otherwise need an absolute allowance that hides
 * the 2-2-2 slips). Worst step reported.
 */
function compareTrajectory(
  ctx: CheckContext,
  f: Net222Fixture,
  actual: StepRecord[],
  part: "forward" | "gradients" | "weights",
): Array<[string, Comparison]> {
  const tol = toleranceFor(ctx.precision, "value");
  if (part === "weights") {
    return WEIGHT_NAMES.map((n) => [
      `weights.${n}`,
      compareValues(
        actual.map((r) => r.weights[n]),
        f.records.map((r) => r.weights[n]),
        tol,
      ),
    ]);
  }
  const at = actual.map((r) => {
    const c = { ...f.config, ...r.weights };
    const fw = forwardAt(c);
    return { fw, g: gradientsAt(c, fw), scales: net222GradientScales(ctx.precision, c, fw) };
  });
  if (part === "gradients")
    return actual.flatMap((r, i) =>
      compareGradients(ctx.precision, r.gradients, at[i]!.g, at[i]!.scales, `step ${i} (at its own weights)`),
    );
  return FORWARD_NAMES.map((n) => [
    `forward.${n} (at its own weights)`,
    compareValues(
      actual.map((r) => r.forward[n]),
      at.map((e) => e.fw[n]),
      tol,
    ),
  ]);
}

/** The 2-2-2 checks generated from one golden trajectory file. */
export async function net222ChecksFor(path: string, io?: FixtureIO): Promise<Check[]> {
  const f = await loadNet222Fixture(path, io);
  const id = `net222.lr-${f.lr}`;
  const first = f.records[0]!;
  const trainOf = (ctx: CheckContext) =>
    memo(ctx, `${id}.train`, () => ctx.backend.net222!.train(f.config, f.lr, f.steps));
  return [
    {
      id: `${id}.forward.step0`,
      capability: "net222.forward",
      source: path,
      async run(ctx) {
        const got = await ctx.backend.net222!.forward(configAt(f, first));
        return outcomeOf(
          FORWARD_NAMES.map((n) => [
            n,
            compareValues([got[n]], [first.forward[n]], toleranceFor(ctx.precision, "value")),
          ]),
        );
      },
    },
    {
      id: `${id}.gradients.step0`,
      capability: "net222.gradients",
      source: path,
      async run(ctx) {
        const got = await ctx.backend.net222!.gradients(configAt(f, first));
        return outcomeOf(
          compareGradients(ctx.precision, got, first.gradients, scalesAt(ctx.precision, f, first), "step 0"),
        );
      },
    },
    {
      id: `${id}.step.step0`,
      capability: "net222.step",
      source: path,
      async run(ctx) {
        const got = await ctx.backend.net222!.step(configAt(f, first), f.lr);
        return outcomeOf(
          compareStep(ctx.precision, got, f.records[1]!.weights, first, scalesAt(ctx.precision, f, first), f.lr),
        );
      },
    },
    ...(["weights", "forward", "gradients"] as const).map(
      (part): Check => ({
        id: `${id}.train.${part}`,
        capability: "net222.train",
        source: path,
        async run(ctx) {
          const got = await trainOf(ctx);
          if (got.length !== f.records.length)
            return { pass: false, detail: `expected ${f.records.length} records (steps + 1), got ${got.length}` };
          return outcomeOf(compareTrajectory(ctx, f, got, part));
        },
      }),
    ),
  ];
}

/** `io` says where the golden files are read from (default: the file system). */
export async function net222Checks(paths: readonly string[], io?: FixtureIO): Promise<Check[]> {
  const out: Check[] = [];
  for (const p of paths) out.push(...(await net222ChecksFor(p, io)));
  return out;
}
