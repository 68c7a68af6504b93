import { describe, expect, it } from "vitest";
import {
  CLASS_CONFIG,
  compareValues,
  DEFAULT_DROPOUT_RATES,
  dropoutRate,
  dropoutRatesProblems,
  learningRateSchema,
  net222ConfigSchema,
  net222FixtureSchema,
  parseWith,
  PROTOCOL_METHODS,
  recipeSchema,
  SpecValidationError,
  toleranceFor,
} from "@nnspec/spec";

function errorOf(fn: () => unknown): SpecValidationError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SpecValidationError) return e;
    throw e;
  }
  throw new Error("expected a SpecValidationError");
}

describe("2-2-2 config validation names the source and the field", () => {
  const src = "my-config.json";
  it("accepts the class values and defaults the biases to 0", () => {
    const { b1, b2, ...noBias } = CLASS_CONFIG;
    expect(parseWith(net222ConfigSchema, noBias, src)).toEqual(CLASS_CONFIG);
    expect([b1, b2]).toEqual([0, 0]);
  });
  it("missing field", () => {
    const { w3: _, ...rest } = CLASS_CONFIG;
    const e = errorOf(() => parseWith(net222ConfigSchema, rest, src));
    expect(e.message).toContain(src);
    expect(e.problems).toEqual([`field "w3": missing (expected number)`]);
  });
  it("non-number", () => {
    const e = errorOf(() => parseWith(net222ConfigSchema, { ...CLASS_CONFIG, i2: "0.1" }, src));
    expect(e.problems).toEqual([`field "i2": expected number, got string`]);
  });
  it("NaN and Infinity", () => {
    const e = errorOf(() => parseWith(net222ConfigSchema, { ...CLASS_CONFIG, w5: NaN, t1: -Infinity }, src));
    expect(e.problems).toEqual([
      `field "t1": is -Infinity (expected a finite number)`,
      `field "w5": is NaN (expected a finite number)`,
    ]);
  });
  it("unknown field (a typo must not be ignored)", () => {
    const e = errorOf(() => parseWith(net222ConfigSchema, { ...CLASS_CONFIG, w9: 1 }, src));
    expect(e.problems[0]).toMatch(/w9/);
  });
  it("learning rate out of range", () => {
    for (const lr of [0, -0.5, 1e6]) {
      const e = errorOf(() => parseWith(learningRateSchema, lr, "--lr"));
      expect(e.message).toMatch(/--lr[\s\S]*learning rate out of range/);
    }
    expect(parseWith(learningRateSchema, 2, "--lr")).toBe(2);
  });
});

describe("2-2-2 fixture validation", () => {
  const record = {
    step: 0,
    weights: { w1: 0, w2: 0, w3: 0, w4: 0, w5: 0, w6: 0, w7: 0, w8: 0 },
    forward: { h1: 0, a_h1: 0, h2: 0, a_h2: 0, o1: 0, a_o1: 0, o2: 0, a_o2: 0, E1: 0, E2: 0, E_total: 0 },
    gradients: { w1: 0, w2: 0, w3: 0, w4: 0, w5: 0, w6: 0, w7: 0, w8: 0 },
  };
  const good = {
    kind: "net222.trajectory",
    formatVersion: 1,
    description: "",
    generator: "",
    precision: "float64",
    config: CLASS_CONFIG,
    lr: 0.5,
    steps: 1,
    records: [record, { ...record, step: 1 }],
  };
  it("accepts a well-formed file", () => {
    expect(parseWith(net222FixtureSchema, good, "f.json").steps).toBe(1);
  });
  it("record count must be steps + 1", () => {
    const e = errorOf(() => parseWith(net222FixtureSchema, { ...good, steps: 5 }, "f.json"));
    expect(e.problems).toEqual([`field "records": expected steps + 1 = 6 records, found 2`]);
  });
  it("names the nested field of a bad record", () => {
    const bad = { ...good, records: [record, { ...record, step: 1, gradients: { ...record.gradients, w7: "x" } }] };
    const e = errorOf(() => parseWith(net222FixtureSchema, bad, "f.json"));
    expect(e.problems).toEqual([`field "records.1.gradients.w7": expected number, got string`]);
  });
});

describe("tolerance comparisons", () => {
  const tol = toleranceFor("float32", "value");
  it("non-finite values are strict: NaN ≠ Infinity ≠ number", () => {
    expect(compareValues([NaN], [NaN], tol).pass).toBe(true);
    expect(compareValues([Infinity], [NaN], tol).pass).toBe(false);
    expect(compareValues([NaN], [1], tol).pass).toBe(false);
    expect(compareValues([Infinity], [Infinity], tol).pass).toBe(true);
    expect(compareValues([-Infinity], [Infinity], tol).pass).toBe(false);
  });
  it("relative and absolute parts: |a−e| ≤ atol + rtol·|e|", () => {
    expect(compareValues([1 + 0.9e-4], [1], tol).pass).toBe(true);
    expect(compareValues([1 + 1.2e-4], [1], tol).pass).toBe(false);
    expect(compareValues([0.9e-6], [0], tol).pass).toBe(true);
  });
  it("gradient kind scales by the tensor's max |value|", () => {
    const g = toleranceFor("float32", "gradient");
    expect(compareValues([1, 1e-9 + 5e-5], [1, 1e-9], g, "gradient").pass).toBe(true);
    expect(compareValues([1, 1e-9 + 5e-5], [1, 1e-9], tol, "value").pass).toBe(false);
  });
  it("length mismatch fails", () => {
    expect(compareValues([1, 2], [1], tol).pass).toBe(false);
  });
});

describe("dropout rates (a recipe setting passed with each training forward)", () => {
  it("one rate per dropout layer, each in [0, 1); absent means the architecture's", () => {
    expect(DEFAULT_DROPOUT_RATES).toEqual([0.2, 0.2, 0.15]);
    expect(dropoutRate(undefined, 2)).toBe(0.15);
    expect(dropoutRate({ rates: [0.1, 0.3, 0] }, 1)).toBe(0.3);
    expect(dropoutRate({ rates: [0.1, 0.3, 0] }, 2)).toBe(0);
    expect(dropoutRatesProblems([0.1, 0.1, 0.05])).toEqual([]);
    expect(dropoutRatesProblems([0.1, 0.1])).toEqual(["dropout rates: expected 3 (one per dropout layer), got 2"]);
    expect(dropoutRatesProblems([0.1, 1, -0.1])).toEqual([
      "dropout rate 1 (drop2): must be in [0, 1), got 1",
      "dropout rate 2 (drop3): must be in [0, 1), got -0.1",
    ]);
  });
  it("the wire schema and the recipe schema refuse bad rates", () => {
    const args = PROTOCOL_METHODS["model.forward"].args;
    const call = (rates: number[]) => ({
      model: 1,
      x: [0],
      n: 1,
      options: { mode: "train", dropout: { seed: 1, step: 0, rates } },
    });
    expect(args.safeParse(call([0.1, 0.1, 0.05])).success).toBe(true);
    expect(args.safeParse(call([0.1, 0.1, 1])).success).toBe(false);
    expect(recipeSchema.safeParse({ dropout: [0.5] }).success).toBe(false);
    expect(recipeSchema.parse({ dropout: [0, 0, 0] }).dropout).toEqual([0, 0, 0]);
  });
});
