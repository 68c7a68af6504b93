import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLASS_CONFIG,
  CLASS_LEARNING_RATES,
  compareValues,
  forward,
  gradients,
  toleranceFor,
  updateWeights,
  weightsOf,
  type Backend,
  type Net222Config,
} from "@nnspec/spec";
import { loadWorkspaceBackend as loadBackend } from "../src/workspace-backends.ts";
import { runSweep, sweepSummarySchema, type SweepResult } from "../src/sweep/index.ts";
import { PNG_SIGNATURE, pngSize, svgSize } from "../src/plot/index.ts";

/** The trajectory from the spec's hand-derived formulas: E_total per step, and the first non-finite step. */
function specTrajectory(config: Net222Config, lr: number, steps: number) {
  const eTotal: number[] = [];
  let firstNonFinite: number | null = null;
  let c = config;
  for (let k = 0; k <= steps; k++) {
    const f = forward(c),
      g = gradients(c, f);
    eTotal.push(f.E_total);
    if (
      firstNonFinite === null &&
      [...Object.values(weightsOf(c)), ...Object.values(f), ...Object.values(g)].some((v) => !Number.isFinite(v))
    )
      firstNonFinite = k;
    c = { ...c, ...updateWeights(c, g, lr) };
  }
  return { eTotal, firstNonFinite };
}

const dirs: string[] = [];
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), "nnspec-sweep-"));
  dirs.push(d);
  return d;
};
let backend: Backend;
beforeAll(async () => {
  backend = await loadBackend("reference");
});
afterAll(async () => {
  await backend?.dispose?.();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("runSweep, default (class values, six learning rates, 100 steps)", () => {
  let result: SweepResult;
  beforeAll(async () => {
    result = await runSweep({ backend, outDir: await tempDir() });
  });

  it("writes 7 PNG + 7 SVG (one per η and one combined) and sweep.json, nothing else", async () => {
    const names = (await readdir(result.outDir)).sort();
    expect(names.filter((n) => n.endsWith(".png"))).toHaveLength(7);
    expect(names.filter((n) => n.endsWith(".svg"))).toHaveLength(7);
    expect(names).toContain("sweep.json");
    expect(names).toHaveLength(15); // no leftover temp files
    expect(result.files.map((f) => f.slice(result.outDir.length + 1)).sort()).toEqual(names);
  });

  it("PNGs are real PNGs of the SVG size × 2; SVGs carry the title, axis titles and one legend entry per η", async () => {
    const combinedSvg = await readFile(join(result.outDir, "error-all-lr.svg"), "utf8");
    for (const text of [
      "step",
      "E_total (log scale)",
      "learning rate η",
      ...CLASS_LEARNING_RATES.map((lr) => `η = ${lr}`),
    ])
      expect(combinedSvg).toContain(text);
    for (const row of [...result.summary.rows, { lr: "all", chart: result.summary.combinedChart }]) {
      if (!row.chart) throw new Error("charts expected");
      const svg = await readFile(join(result.outDir, row.chart.svg), "utf8");
      expect(svg).toContain("step");
      expect(svg).toMatch(/error \(log scale\)|E_total \(log scale\)/);
      if (typeof row.lr === "number") expect(svg).toContain(`η = ${row.lr}`);
      const pngBytes = await readFile(join(result.outDir, row.chart.png));
      expect(pngBytes.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
      const png = pngSize(pngBytes);
      const size = svgSize(svg);
      expect(png).toEqual({ width: size.width * 2, height: size.height * 2 });
    }
  });

  it("E_total at step 0 is the class value 0.0141813779378917 to 15 significant digits, as the spec formulas give", () => {
    const fromSpec = forward(CLASS_CONFIG).E_total;
    expect(fromSpec.toPrecision(15)).toBe("0.0141813779378917");
    expect(result.summary.rows.map((r) => r.lr)).toEqual([...CLASS_LEARNING_RATES]);
    for (const row of result.summary.rows) expect(row.eTotalStart?.toPrecision(15)).toBe(fromSpec.toPrecision(15));
  });

  it("final E_total and steps-to-threshold agree with the spec formulas' trajectory", () => {
    const tol = toleranceFor(result.summary.backend.precision, "value");
    for (const row of result.summary.rows) {
      const spec = specTrajectory(CLASS_CONFIG, row.lr, 100);
      expect(compareValues([row.eTotalFinal ?? Number.NaN], [spec.eTotal[100]!], tol).pass).toBe(true);
      const firstBelow = spec.eTotal.findIndex((e) => e < 1e-3);
      expect(row.stepsToThreshold).toBe(firstBelow < 0 ? null : firstBelow);
      expect(row.divergedAtStep).toBeNull();
    }
    // The sweep is a comparison: a larger η converges in fewer steps here, and the small ones never do in 100.
    const reached = result.summary.rows.map((r) => r.stepsToThreshold);
    expect(reached.slice(0, 2)).toEqual([null, null]);
    const numeric = reached.slice(2) as number[];
    expect([...numeric].sort((a, b) => b - a)).toEqual(numeric);
  });

  it("sweep.json holds the table and validates against its schema", async () => {
    const json: unknown = JSON.parse(await readFile(join(result.outDir, "sweep.json"), "utf8"));
    const summary = sweepSummarySchema.parse(json);
    expect(summary).toEqual(result.summary);
    expect(summary.config).toEqual(CLASS_CONFIG);
  });

  it("the printed table has a row per η with 'never' where the threshold is not reached", () => {
    const lines = result.table.split("\n");
    expect(lines).toHaveLength(2 + CLASS_LEARNING_RATES.length);
    expect(lines[0]).toMatch(/η.*E_total step 0.*E_total step 100.*steps to E_total < 0\.001/);
    expect(lines[2]).toMatch(/^0\.1 .* never /);
  });
});

describe("divergence", () => {
  // A huge input with w1 = w3 = 0 keeps step 0 finite, but the first update makes w1 ~ -1e157, so h1 = w1·i1
  // overflows to -Infinity at step 1.
  const overflowAtStep1: Net222Config = { ...CLASS_CONFIG, i1: 1e160, w1: 0, w3: 0 };
  // Opposite huge weights on inputs > 1: h1 = +Inf + -Inf = NaN already at step 0.
  const nanAtStep0: Net222Config = { ...CLASS_CONFIG, i1: 10, i2: 10, w1: 1e308, w2: -1e308 };

  it("reports the first step with a NaN/±Infinity quantity, and never counts a diverged run as converged", async () => {
    const result = await runSweep({
      backend,
      config: overflowAtStep1,
      lrs: [0.5, 2],
      steps: 10,
      outDir: await tempDir(),
    });
    for (const row of result.summary.rows) {
      const spec = specTrajectory(overflowAtStep1, row.lr, 10);
      expect(spec.firstNonFinite).toBe(1);
      expect(row.divergedAtStep).toBe(spec.firstNonFinite);
      expect(row.divergedQuantity).toMatch(/^forward\.h1 = -Infinity$/);
      expect(row.stepsToThreshold).toBeNull();
    }
    expect(result.table).toContain("diverged at step 1 (forward.h1 = -Infinity)");
    expect((await readdir(result.outDir)).filter((n) => n.endsWith(".png"))).toHaveLength(3);
  });

  it("a run that is NaN from step 0 is reported at step 0, with null errors in sweep.json", async () => {
    const result = await runSweep({ backend, config: nanAtStep0, lrs: [1], steps: 5, outDir: await tempDir() });
    const [row] = result.summary.rows;
    expect(specTrajectory(nanAtStep0, 1, 5).firstNonFinite).toBe(0);
    expect(row).toMatchObject({ divergedAtStep: 0, eTotalStart: null, eTotalFinal: null, stepsToThreshold: null });
    expect(result.table).toMatch(/^1 +NaN +NaN +never +diverged at step 0 \(forward\.h1 = NaN\)$/m);
    const saved = sweepSummarySchema.parse(JSON.parse(await readFile(join(result.outDir, "sweep.json"), "utf8")));
    expect(saved.rows[0]?.divergedAtStep).toBe(0);
  });
});

describe("runSweep options", () => {
  it("rejects bad options with the field named, and a backend without net222.train", async () => {
    const outDir = await tempDir();
    await expect(runSweep({ backend, lrs: [0], outDir })).rejects.toThrow(/field "lrs\.0": learning rate out of range/);
    await expect(runSweep({ backend, lrs: [0.5, 0.5], outDir })).rejects.toThrow(/distinct/);
    await expect(runSweep({ backend, steps: 1.5, outDir })).rejects.toThrow(/field "steps"/);
    const noTrain: Backend = { manifest: { ...backend.manifest, capabilities: [] } };
    await expect(runSweep({ backend: noTrain, outDir })).rejects.toThrow(/does not implement net222\.train/);
    expect(await readdir(outDir)).toEqual([]);
  });

  it("charts: false writes only sweep.json", async () => {
    const result = await runSweep({ backend, lrs: [0.5], steps: 3, charts: false, outDir: await tempDir() });
    expect(await readdir(result.outDir)).toEqual(["sweep.json"]);
    expect(result.summary.combinedChart).toBeNull();
  });
});
