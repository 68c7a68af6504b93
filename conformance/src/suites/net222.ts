import {
  compareValues, FORWARD_NAMES, toleranceFor, WEIGHT_NAMES,
  type Comparison, type Net222Config, type Net222Fixture, type StepRecord,
} from "@nnspec/spec";
import { loadNet222Fixture, type FixtureIO } from "@nnspec/fixtures/core";
import { memo, outcomeOf, type Check, type CheckContext } from "../checks.ts";

const pick = (r: Record<string, number>, names: readonly string[]) => names.map((n) => r[n]!);

function configAt(f: Net222Fixture, rec: StepRecord): Net222Config {
  return { ...f.config, ...rec.weights };
}

/**
 * Compare whole trajectories. Values and weights: each quantity over all steps, elementwise. Gradients: each
 * step's eight gradients as one tensor (scale = that step's largest |∂E/∂w|), worst step reported.
 */
function compareTrajectory(ctx: CheckContext, actual: StepRecord[], expected: StepRecord[], part: "forward" | "gradients" | "weights"): Array<[string, Comparison]> {
  if (part === "gradients") {
    const tol = toleranceFor(ctx.precision, "gradient");
    return expected.map((r, i) => [`step ${i} ∂E/∂w`, compareValues(pick(actual[i]!.gradients, WEIGHT_NAMES), pick(r.gradients, WEIGHT_NAMES), tol, "gradient")]);
  }
  const names = part === "forward" ? FORWARD_NAMES : WEIGHT_NAMES;
  const tol = toleranceFor(ctx.precision, "value");
  return names.map((n) => [
    `${part}.${n}`,
    compareValues(actual.map((r) => (r[part] as Record<string, number>)[n]!), expected.map((r) => (r[part] as Record<string, number>)[n]!), tol),
  ]);
}

/** The 2-2-2 checks generated from one golden trajectory file. */
export async function net222ChecksFor(path: string, io?: FixtureIO): Promise<Check[]> {
  const f = await loadNet222Fixture(path, io);
  const id = `net222.lr-${f.lr}`;
  const first = f.records[0]!;
  const trainOf = (ctx: CheckContext) => memo(ctx, `${id}.train`, () => ctx.backend.net222!.train(f.config, f.lr, f.steps));
  return [
    {
      id: `${id}.forward.step0`, capability: "net222.forward", source: path,
      async run(ctx) {
        const got = await ctx.backend.net222!.forward(configAt(f, first));
        return outcomeOf(FORWARD_NAMES.map((n) => [n, compareValues([got[n]], [first.forward[n]], toleranceFor(ctx.precision, "value"))]));
      },
    },
    {
      id: `${id}.gradients.step0`, capability: "net222.gradients", source: path,
      async run(ctx) {
        const got = await ctx.backend.net222!.gradients(configAt(f, first));
        return outcomeOf([["∂E/∂w", compareValues(pick(got, WEIGHT_NAMES), pick(first.gradients, WEIGHT_NAMES), toleranceFor(ctx.precision, "gradient"), "gradient")]]);
      },
    },
    {
      id: `${id}.step.step0`, capability: "net222.step", source: path,
      async run(ctx) {
        const got = await ctx.backend.net222!.step(configAt(f, first), f.lr);
        return outcomeOf([["weights after one step", compareValues(pick(got, WEIGHT_NAMES), pick(f.records[1]!.weights, WEIGHT_NAMES), toleranceFor(ctx.precision, "value"))]]);
      },
    },
    ...(["weights", "forward", "gradients"] as const).map((part): Check => ({
      id: `${id}.train.${part}`, capability: "net222.train", source: path,
      async run(ctx) {
        const got = await trainOf(ctx);
        if (got.length !== f.records.length) return { pass: false, detail: `expected ${f.records.length} records (steps + 1), got ${got.length}` };
        return outcomeOf(compareTrajectory(ctx, got, f.records, part));
      },
    })),
  ];
}

/** `io` says where the golden files are read from (default: the file system). */
export async function net222Checks(paths: readonly string[], io?: FixtureIO): Promise<Check[]> {
  const out: Check[] = [];
  for (const p of paths) out.push(...(await net222ChecksFor(p, io)));
  return out;
}
