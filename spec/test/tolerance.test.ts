import { describe, expect, it } from "vitest";
import {
  CLASS_CONFIG,
  UNIT_ROUNDOFF,
  compareAfterSgdSteps,
  compareSgdUpdate,
  compareValues,
  forward,
  gradients,
  layerScale,
  net222GradientScales,
  toleranceFor,
  WEIGHT_NAMES,
} from "../src/index.ts";

const f32 = Math.fround;

describe("tolerance rules from float32 error analysis", () => {
  it("a gradient that is zero in theory is judged against its layer, not its own rounding noise", () => {
    const g = toleranceFor("float32", "gradient");
    const bias = [2e-7, -1.5e-7]; // the residue of a cancelling sum, as PyTorch float32 leaves it
    const golden = [3e-17, -1e-17];
    expect(compareValues(bias, golden, g, "gradient").pass).toBe(false); // per tensor: scale 3e-17
    expect(compareValues(bias, golden, g, "gradient", layerScale([[0.05, -0.02], golden])).pass).toBe(true);
  });

  it("2-2-2: the class-sheet slip fails at float32, a float32 evaluation passes", () => {
    const fw = forward(CLASS_CONFIG);
    const exact = gradients(CLASS_CONFIG, fw);
    const scales = net222GradientScales("float32", CLASS_CONFIG, fw);
    const tol = toleranceFor("float32", "gradient");
    const slip = {
      ...exact,
      w3: (exact.w3 * fw.a_h1 * (1 - fw.a_h1)) / (fw.a_h2 * (1 - fw.a_h2)),
      w4: (exact.w4 * fw.a_h1 * (1 - fw.a_h1)) / (fw.a_h2 * (1 - fw.a_h2)),
    };
    const pick = (g: Record<string, number>) => WEIGHT_NAMES.map((w) => f32(g[w]!));
    const at = WEIGHT_NAMES.map((w) => scales[w]);
    expect(
      compareValues(
        pick(exact),
        WEIGHT_NAMES.map((w) => exact[w]),
        tol,
        "gradient",
        at,
      ).pass,
    ).toBe(true);
    expect(
      compareValues(
        pick(slip),
        WEIGHT_NAMES.map((w) => exact[w]),
        tol,
        "gradient",
        at,
      ).worstRatio,
    ).toBeGreaterThan(2);
    // The old rule, one scale for all eight gradients, let it pass.
    expect(
      compareValues(
        pick(slip),
        WEIGHT_NAMES.map((w) => exact[w]),
        { rtol: 1e-4, atol: 1e-7 },
        "gradient",
      ).pass,
    ).toBe(true);
  });

  it("parameters after SGD steps: storage rounding plus carried gradient allowance, below the effect of weight decay", () => {
    const lr = 0.05,
      m = 0.9,
      wd = 5e-4,
      p0 = [1.01, -0.3],
      g = [0.02, 0.01];
    const step = (p: number[], b: number[] | null, useWd: boolean) => {
      const nb = p.map((v, i) => (b ? m * b[i]! : 0) + g[i]! + (useWd ? wd * v : 0));
      return { p: p.map((v, i) => f32(v - lr * nb[i]!)), b: nb };
    };
    const run = (useWd: boolean) => {
      const s1 = step(p0.map(f32), null, useWd);
      return step(s1.p, s1.b, useWd).p;
    };
    const exact = (() => {
      let b: number[] | null = null;
      let p = p0;
      for (let k = 0; k < 2; k++) {
        const nb: number[] = p.map((v, i) => (b ? m * b[i]! : 0) + g[i]! + wd * v);
        p = p.map((v, i) => v - lr * nb[i]!);
        b = nb;
      }
      return p;
    })();
    const o = { precision: "float32" as const, steps: 2, lr, momentum: m, gradientScale: 0.02 };
    expect(compareAfterSgdSteps(run(true), exact, p0, o).pass).toBe(true);
    expect(compareAfterSgdSteps(run(false), exact, p0, o).worstRatio).toBeGreaterThan(10);
  });

  it("an update recomputed from the backend's own tensors differs by storage rounding only", () => {
    const p0 = [1.5, -0.25],
      p1 = p0.map((v) => f32(v - 0.05 * (0.01 + 5e-4 * v)));
    const want = p0.map((v) => v - 0.05 * (0.01 + 5e-4 * v));
    expect(compareSgdUpdate(p1, want, [p0, p1], "float32").pass).toBe(true);
    const noDecay = p0.map((v) => f32(v - 0.05 * 0.01));
    expect(compareSgdUpdate(noDecay, want, [p0, noDecay], "float32").worstRatio).toBeGreaterThan(10);
    expect(UNIT_ROUNDOFF.float32).toBe(2 ** -24);
  });
});
