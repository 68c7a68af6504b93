import {
  WEIGHT_NAMES,
  type Backend,
  type Forward,
  type Gradients,
  type Net222Config,
  type Net222Ops,
  type StepRecord,
  type Weights,
} from "@nnspec/spec";
import { SPEC_CHOICES, gradientColumnOf, replayWith, type FormulaChoices } from "@nnspec/fixtures/excel";
import { VERSION } from "@nnspec/backend-reference";
import type { MutantPrecision } from "./cnn.ts";

/**
 * 2-2-2 mutants: the contract's formulas as the audit replays them (fixtures/src/excel/slips.ts, `replayWith`: the
 * spec formulas with each way of writing them wrong as one FormulaChoice), with one choice changed — the same
 * slips the audit names in workbooks — or the update rule changed. At float32 every value the backend stores
 * (inputs, weights, results) is rounded to float32, as a float32 backend holds them.
 */
export interface Net222Mutation {
  readonly choices?: Partial<FormulaChoices>;
  /** The biases b1, b2 (fixed by the contract) trained like weights: b ← b − η·∂E/∂b. */
  readonly trainBiases?: boolean;
}

export interface Net222MutantSpec {
  readonly id: string;
  readonly title: string;
  readonly mutation: Net222Mutation;
}

export const NET222_MUTANTS: readonly Net222MutantSpec[] = [
  {
    id: "class-sheet-slip",
    title: "a_h1·(1 − a_h1) in ∂E/∂w3 and ∂E/∂w4 (the class sheet's slip)",
    mutation: { choices: { hiddenDerivative: { ...SPEC_CHOICES.hiddenDerivative, w3: "a_h1", w4: "a_h1" } } },
  },
  {
    id: "a_h2-in-w2",
    title: "a_h2·(1 − a_h2) in ∂E/∂w2",
    mutation: { choices: { hiddenDerivative: { ...SPEC_CHOICES.hiddenDerivative, w2: "a_h2" } } },
  },
  {
    id: "sequential-update",
    title: "sequential update: w5…w8 changed before ∂E/∂w1…∂E/∂w4 are computed",
    mutation: { choices: { outputWeights: "updated" } },
  },
  { id: "sigma-prime-is-sigma", title: "σ′ = σ instead of σ·(1 − σ)", mutation: { choices: { sigmaPrime: "a" } } },
  {
    id: "loss-without-half",
    title: "the loss without ½ (E and every gradient doubled)",
    mutation: { choices: { halfInLoss: false } },
  },
  { id: "biases-trained", title: "the fixed biases b1, b2 trained", mutation: { trainBiases: true } },
];

const FORWARD_KEYS = ["h1", "a_h1", "h2", "a_h2", "o1", "a_o1", "o2", "a_o2", "E1", "E2", "E_total"] as const;

function ops(m: Net222Mutation, precision: MutantPrecision): Net222Ops {
  const round = precision === "float32" ? Math.fround : (x: number) => x;
  const store = (c: Net222Config): Net222Config =>
    Object.fromEntries(Object.entries(c).map(([k, v]) => [k, round(v)])) as Net222Config;
  const choices: FormulaChoices = { ...SPEC_CHOICES, ...m.choices };
  /** Forward values and gradients at `c`; η only matters to the sequential-update slip (its gradients need the update). */
  const evaluate = (c: Net222Config, lr: number | null) => {
    const v = replayWith(c, lr === null ? { ...choices, outputWeights: "current" } : choices, lr)!;
    const forward = Object.fromEntries(FORWARD_KEYS.map((k) => [k, round(v[k])])) as Forward;
    const gradients = Object.fromEntries(WEIGHT_NAMES.map((w) => [w, round(v[gradientColumnOf(w)])])) as Gradients;
    return { forward, gradients };
  };
  const descend = (c: Net222Config, g: Gradients, lr: number): Net222Config => {
    const next = { ...c };
    for (const w of WEIGHT_NAMES) next[w] = round(c[w] - lr * g[w]);
    if (m.trainBiases) {
      // ∂E/∂b2 = δ_o1 + δ_o2 = (∂E/∂w5 + ∂E/∂w7)/a_h1; ∂E/∂b1 = δ_h1 + δ_h2 = (∂E/∂w1 + ∂E/∂w3)/i1.
      const { a_h1 } = evaluate(c, null).forward;
      next.b2 = round(c.b2 - (lr * (g.w5 + g.w7)) / a_h1);
      next.b1 = round(c.b1 - (lr * (g.w1 + g.w3)) / c.i1);
    }
    return next;
  };
  const weights = (c: Net222Config): Weights => Object.fromEntries(WEIGHT_NAMES.map((w) => [w, c[w]])) as Weights;
  return {
    async forward(c) {
      return evaluate(store(c), null).forward;
    },
    async gradients(c) {
      return evaluate(store(c), null).gradients;
    },
    async step(c, lr) {
      const s = store(c);
      return weights(descend(s, evaluate(s, lr).gradients, lr));
    },
    async train(config, lr, steps) {
      const records: StepRecord[] = [];
      let c = store(config);
      for (let step = 0; step <= steps; step++) {
        const atLr = evaluate(c, lr);
        // The record holds what the backend reports at these weights; the update uses what it computed for it.
        const shown = evaluate(c, null);
        records.push({ step, weights: weights(c), forward: shown.forward, gradients: atLr.gradients });
        c = descend(c, atLr.gradients, lr);
      }
      return records;
    },
  };
}

/** A 2-2-2-only backend around one mutation (or none: the control). It claims the 2-2-2 capabilities only. */
export function net222MutantBackend(spec: Net222MutantSpec | null, precision: MutantPrecision): Backend {
  return {
    manifest: {
      name: spec ? `mutant-${spec.id}` : "mutant-net222-control",
      version: VERSION,
      precision,
      environment: "node",
      device: `2-2-2 formulas, ${precision === "float32" ? "values stored as float32" : "float64"}${spec ? `, mutation: ${spec.title}` : ", unmutated"}`,
      capabilities: ["net222.forward", "net222.gradients", "net222.step", "net222.train"],
    },
    net222: ops(spec?.mutation ?? {}, precision),
  };
}
