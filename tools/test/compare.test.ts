import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECIPES, recipeSchema, type Recipe } from "@nnspec/spec";
import { compareMarkdown, groupRows, loadRunRecords, logTicks, runRow } from "../src/compare/index.ts";
import { pngSize, svgSize } from "../src/plot/image-size.ts";
import { machineInfo, runRecordSchema, type RunRecord } from "../src/train/run-record.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = join(repoRoot, "tools/bin/nnspec.js");

function nnspec(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: repoRoot, env: { ...process.env, NO_COLOR: "1" }, timeout: 110_000 },
      (err, stdout, stderr) => {
        ok({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** A small, valid run record: `accs` are the per-epoch test accuracies. */
function record(o: {
  backend?: string;
  seed?: number;
  accs: number[];
  recipe?: Recipe;
  status?: RunRecord["status"];
  wall?: number;
}): RunRecord {
  const recipe = o.recipe ?? recipeSchema.parse({ ...RECIPES.reference, epochs: o.accs.length });
  const status = o.status ?? "complete";
  const r: RunRecord = {
    kind: "nnspec.train-run",
    formatVersion: 2,
    status,
    stop:
      status === "complete"
        ? null
        : { reason: status, epoch: o.accs.length, batch: null, step: 10 * o.accs.length, detail: "test" },
    backend: {
      name: o.backend ?? "reference",
      version: "0.1.0",
      precision: "float32",
      environment: "node",
      device: "test",
      capabilities: [],
    },
    recipe,
    seed: o.seed ?? 1,
    limit: null,
    testLimit: null,
    trainImages: 60000,
    testImages: 10000,
    evalBatchSize: 1000,
    stepsPerEpoch: 469,
    resumedFrom: null,
    segments: [],
    epochs: o.accs.map((a, i) => ({
      epoch: i + 1,
      trainLoss: 0.3 / (i + 1),
      trainAccuracy: 0.9 + i * 0.005,
      testLoss: 0.2 / (i + 1),
      testAccuracy: a,
      imagesPerSecond: 500,
      trainSeconds: 120,
      evalSeconds: 5,
      lastLr: 0.01,
      trainedBy: [],
    })),
    batchLoss: [2.3, 1.2, 0.4],
    checkpoint: null,
    wallSeconds: o.wall ?? 1800,
    imagesPerSecond: 500,
    startedAt: "2026-11-30T00:00:00.000Z",
    finishedAt: "2026-11-30T00:30:00.000Z",
    machine: machineInfo(),
  };
  return runRecordSchema.parse(r);
}

let dir: string;
const write = async (name: string, value: unknown) => {
  const p = join(dir, name);
  await writeFile(p, typeof value === "string" ? value : JSON.stringify(value));
  return p;
};
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-compare-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("compare: loading run records", () => {
  it("validates every file with zod; one line per bad file naming it and the field", async () => {
    const good = await write("good.json", record({ accs: [0.98, 0.99] }));
    const bad = record({ accs: [0.98, 0.99] }) as unknown as { epochs: { testAccuracy: unknown }[] };
    bad.epochs[1]!.testAccuracy = "99%";
    const badPath = await write("bad.json", bad);
    const notJson = await write("broken.json", "{ nope");
    await expect(loadRunRecords([good, badPath])).rejects.toThrow(
      `${badPath}: field epochs[1].testAccuracy: expected a number`,
    );
    await expect(loadRunRecords([notJson])).rejects.toThrow(
      new RegExp(`^${notJson.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not JSON`),
    );
    await expect(loadRunRecords([join(dir, "missing.json")])).rejects.toThrow(/missing\.json: no such file/);
    await expect(loadRunRecords([await write("other.json", { kind: "nnspec.bench" })])).rejects.toThrow(
      /other\.json: field kind: Invalid literal value, expected "nnspec\.train-run"/,
    );
    const err = await loadRunRecords([badPath, notJson]).catch((e: Error) => e);
    expect((err as Error).message.split("\n")).toHaveLength(1); // both files, one line
    expect((err as Error).message).toContain("bad.json");
    expect((err as Error).message).toContain("broken.json");
    const [run] = await loadRunRecords([good]);
    expect(run!.label).toBe("reference (float32) · reference · seed 1");
  });
});

describe("compare: table", () => {
  it("final, best, mean ± half range per backend and recipe, first epoch ≥ 99.4 %, wall time and img/s", async () => {
    const files = await Promise.all([
      write("a1.json", record({ seed: 1, accs: [0.99, 0.9941, 0.995] })),
      write("a2.json", record({ seed: 2, accs: [0.99, 0.993, 0.996] })),
      write("a3.json", record({ seed: 3, accs: [0.99, 0.9962, 0.9955], wall: 3600 })),
      write("b1.json", record({ backend: "pytorch", seed: 1, accs: [0.9935, 0.9945] })),
    ]);
    const rows = (await loadRunRecords(files)).map(runRow);
    expect(rows[0]).toMatchObject({ final: 0.995, best: { accuracy: 0.995, epoch: 3 }, firstAtBar: 2 });
    expect(rows[2]).toMatchObject({ final: 0.9955, best: { accuracy: 0.9962, epoch: 2 }, firstAtBar: 2 });
    const [a, b] = groupRows(rows);
    expect(a!.complete).toHaveLength(3);
    expect(a!.finalMean).toBeCloseTo((0.995 + 0.996 + 0.9955) / 3, 12);
    expect([a!.finalMin, a!.finalMax]).toEqual([0.995, 0.996]);
    expect(a!.wallMean).toBeCloseTo((1800 + 1800 + 3600) / 3, 9);
    expect(b!.backend).toBe("pytorch (float32)");
    const md = compareMarkdown(rows);
    expect(md).toContain(
      "| reference (float32) | reference | 1, 2, 3 | **99.550 %** ± 0.050 | 99.50 % – 99.60 % | 99.573 % | 2, 3, 2 | 40.0 min | 500 |",
    );
    expect(md).toContain("| pytorch (float32) | reference | 1 | **99.450 %** ± 0.000 |");
  });

  it("log-axis ticks read at the scale of the data", () => {
    expect(logTicks([0.38, 0.62])).toEqual([0.4, 0.5, 0.6]);
    expect(logTicks([0.4, 0.6, 5])).toEqual([0.4, 0.5, 0.6, 0.8, 1, 1.5, 2, 3, 4, 5, 6]);
    expect(logTicks([0.01, 3])).toEqual([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2]);
  });
});

describe("nnspec compare (CLI)", () => {
  it("writes one PNG + SVG per quantity and compare.md; exit 0 when every run is complete", async () => {
    const files = await Promise.all(
      [1, 2].map((s) => write(`r${s}.json`, record({ seed: s, accs: [0.985, 0.992, 0.9945 + s / 1e4] }))),
    );
    const out = join(dir, "out-ok");
    const r = await nnspec(["compare", ...files, "--out", out]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("## Per backend and recipe");
    for (const q of ["test-error", "test-loss", "train-loss"]) {
      expect(pngSize(await readFile(join(out, `${q}.png`))).width).toBeGreaterThan(1000);
      expect(svgSize(await readFile(join(out, `${q}.svg`), "utf8")).width).toBeGreaterThan(500);
    }
    const svg = await readFile(join(out, "test-error.svg"), "utf8");
    expect(svg).toContain("reference (float32) · reference · seed 2");
    expect(svg).toContain("99.4 %");
    expect(await readFile(join(out, "compare.md"), "utf8")).toContain("| reference (float32) | reference | 1, 2 |");
  });

  it("exit 2 for a bad file (nothing written), 1 when a run diverged, 3 when one stopped early", async () => {
    const ok = await write("c-ok.json", record({ accs: [0.99, 0.994] }));
    const bad = await write("c-bad.json", { ...record({ accs: [0.99] }), seed: "one" });
    let r = await nnspec(["compare", ok, bad, "--out", join(dir, "out-bad")]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`error: ${bad}: field seed: Expected number, received string`);
    const div = await write(
      "c-div.json",
      record({ accs: [0.99], status: "diverged", recipe: recipeSchema.parse({ ...RECIPES.reference, epochs: 2 }) }),
    );
    r = await nnspec(["compare", ok, div, "--out", join(dir, "out-div")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("1 run(s) diverged");
    const cut = await write(
      "c-cut.json",
      record({ accs: [0.99], status: "interrupted", recipe: recipeSchema.parse({ ...RECIPES.reference, epochs: 2 }) }),
    );
    r = await nnspec(["compare", ok, cut, "--out", join(dir, "out-cut")]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("(1/2)");
    r = await nnspec(["compare", ok, "--series", "lines"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/option --series: .*runs.*groups.*auto/);
  });
});
