import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchResultsSchema, type BenchResults } from "@nnspec/spec";
import { calibrate, rateStats, timeReps } from "../src/bench/stats.ts";
import { benchSettings, parseTargets, WORKSPACE_TARGETS } from "../src/bench/plan.ts";
import { entryOf, machine } from "../src/bench/run-bench.ts";
import { replaceScoreboard, SCOREBOARD_END, SCOREBOARD_START, updateReadme } from "../src/bench/readme.ts";
import { summarizeConformance } from "../src/bench/accuracy.ts";
import { deviceNote } from "../src/bench/format.ts";
import { renderBarChart } from "../src/plot/bar-chart.ts";
import { svgSize } from "../src/plot/image-size.ts";
import { writeBenchOutput } from "../src/bench/write-output.ts";
import type { CheckResult } from "@nnspec/conformance";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-bench-unit-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("bench statistics", () => {
  it("turns per-repetition times into rates: median, min, max", () => {
    const s = rateStats(128, [1000, 500, 2000], "images/s"); // 128, 256, 64 images/s
    expect(s).toEqual({ median: 128, min: 64, max: 256, reps: 3, unit: "images/s" });
    expect(rateStats(10, [100, 200], "steps/s").median).toBeCloseTo((100 + 50) / 2, 12);
  });
  it("times only the repetitions after warm-up, and calibrates work to a target duration", async () => {
    const calls: number[] = [];
    const ms = await timeReps(2, 3, async (i) => {
      calls.push(i);
    });
    expect(calls).toEqual([0, 1, 2, 3, 4]);
    expect(ms).toHaveLength(3);
    const runs: { n: number; ms: number }[] = [];
    const spin = async (n: number) => {
      const t0 = performance.now();
      while (performance.now() < t0 + n * 0.05);
      runs.push({ n, ms: performance.now() - t0 });
    };
    const n = await calibrate(4, 100_000, 20, spin);
    // It stops at the first size whose run reached the target, growing the size on every try before.
    expect(runs.at(-1)).toMatchObject({ n });
    // calibrate times each call from outside; the spin's own clock reads up to a timer tick less.
    expect(runs.at(-1)!.ms).toBeGreaterThanOrEqual(19);
    expect(runs.slice(0, -1).every((r, i) => r.ms < 20 && r.n < runs[i + 1]!.n)).toBe(true);
    expect(await calibrate(4, 16, 1e9, spin)).toBe(16); // capped
  });
});

describe("bench plan", () => {
  it("names workspace configurations and accepts packages/paths with a precision suffix", () => {
    expect(WORKSPACE_TARGETS.map((t) => t.id)).toEqual(
      expect.arrayContaining(["reference-float64", "reference-float32", "tfjs-wasm"]),
    );
    const t = parseTargets("reference-float32,./my-backend/index.mjs@float64");
    expect(t[0]).toMatchObject({
      id: "reference-float32",
      specifier: "reference",
      options: { precision: "float32" },
      kind: "backend",
    });
    expect(t[1]).toMatchObject({
      id: "index-float64",
      specifier: "./my-backend/index.mjs",
      options: { precision: "float64" },
    });
    expect(() => parseTargets("tfjs-wasm,tfjs-wasm")).toThrow(/listed twice/);
    expect(() => parseTargets(" , ")).toThrow(/comma-separated/);
  });
  it("picks the budget by mode: quick, default, full (--epochs)", () => {
    const base = { quick: false, seed: 1, out: "x", timeoutS: 60, peer: true };
    expect(benchSettings({ ...base, quick: true }).settings).toMatchObject({ mode: "quick", limit: 256, epochs: 1 });
    expect(benchSettings(base).settings).toMatchObject({ mode: "default", limit: 8192, testLimit: 1000 });
    expect(benchSettings({ ...base, epochs: 15 }).settings).toMatchObject({
      mode: "full",
      epochs: 15,
      limit: null,
      testLimit: null,
    });
  });
});

describe("bench accuracy summary", () => {
  const r = (
    id: string,
    capability: CheckResult["capability"],
    status: CheckResult["status"],
    worstRatio?: number,
  ): CheckResult => ({
    id,
    capability,
    source: "f",
    status,
    detail: "",
    ms: 1,
    ...(worstRatio !== undefined ? { worstRatio } : {}),
  });
  it("groups checks, takes the worst ratio of those that ran, and counts not-implemented separately", () => {
    const s = summarizeConformance(
      [
        r("a", "net222.forward", "pass", 0.1),
        r("b", "net222.train", "pass", 0.4),
        r("c", "cnn.forward", "fail", 3),
        r("d", "cnn.backward", "not-implemented"),
        r("e", "cnn.step", "fail", Number.POSITIVE_INFINITY),
      ],
      [],
      1,
    );
    expect(s).toMatchObject({ checks: 5, passed: 2, failed: 2, notImplemented: 1, worstRatio: null });
    const g = Object.fromEntries(s.groups.map((x) => [x.group, x]));
    expect(g.net222).toMatchObject({ checks: 2, worstRatio: 0.4 });
    expect(g["cnn.forward"]).toMatchObject({ failed: 1, worstRatio: 3 });
    expect(g["cnn.backward"]).toMatchObject({ notImplemented: 1, worstRatio: null });
  });
});

/** A results object built from a worker outcome the way the bench does (no process spawned). */
function syntheticResults(): BenchResults {
  const stats = (m: number) => ({ median: m, min: m * 0.9, max: m * 1.1, reps: 3, unit: "images/s" });
  const ok = entryOf({ id: "fake", kind: "backend", specifier: "fake", options: {} }, 1000, {
    phases: [{ name: "load", status: "ok", seconds: 1 }],
    notes: [],
    rssBytes: 100 * 2 ** 20,
    wallSeconds: 3,
    failure: null,
    patch: {
      startup: { processAt: 1200, backendLoadMs: 300, firstResultAt: 1800 },
      speed: { trainImagesPerSecond: stats(50), net222StepsPerSecond: { ...stats(1e4), unit: "steps/s" } },
      training: {
        epochs: 1,
        trainImages: 256,
        testImages: 100,
        testAccuracy: 0.5,
        testLoss: 1.2,
        wallSeconds: 2,
        imagesPerSecond: 100,
        batchLoss: [2.3, 2.1],
        epochTestAccuracy: [0.5],
      },
    },
  });
  const hung = entryOf({ id: "hung", kind: "backend", specifier: "hung", options: {} }, 0, {
    phases: [{ name: "load", status: "timed-out", seconds: 4, detail: "no result within 4 s; killed" }],
    notes: [],
    rssBytes: null,
    wallSeconds: 4,
    failure: { phase: "load", message: "no result within 4 s; killed", timedOut: true },
    patch: { speed: {} },
  });
  return benchResultsSchema.parse({
    kind: "nnspec.bench",
    formatVersion: 1,
    startedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    machine: machine(),
    settings: benchSettings({ quick: true, seed: 1, out: "x", timeoutS: 4, peer: false }).settings,
    peer: { available: false, reason: "not requested (--no-peer)", version: null },
    entries: [ok, hung],
  });
}

describe("bench results → files", () => {
  it("a worker outcome becomes a row: start-up relative to spawn, unreached phases skipped, timeouts named", () => {
    const [ok, hung] = syntheticResults().entries;
    expect(ok!.startup).toEqual({ processMs: 200, backendLoadMs: 300, firstResultMs: 800 });
    expect(ok!.status).toBe("ok");
    expect(hung!.status).toBe("timed-out");
    expect(hung!.phases.map((p) => p.status)).toEqual([
      "timed-out",
      "skipped",
      "skipped",
      "skipped",
      "skipped",
      "skipped",
    ]);
  });
  it("writes results.json, scoreboard.md, report.html and charts; the README gets the scoreboard between markers", async () => {
    const out = join(dir, "bench");
    const files = await writeBenchOutput(out, syntheticResults());
    expect(benchResultsSchema.safeParse(JSON.parse(await readFile(files.results, "utf8"))).success).toBe(true);
    const md = await readFile(files.scoreboard, "utf8");
    expect(md).toMatch(/\| hung \| — \| timed-out \(load\) \|/);
    expect(md).toMatch(/PyTorch peer: not run \(not requested/);
    expect(files.charts.length).toBeGreaterThanOrEqual(4);

    const readme = join(dir, "README.md");
    await writeFile(readme, `# x\n\nintro\n${SCOREBOARD_START}\nold table\n${SCOREBOARD_END}\nafter\n`);
    await updateReadme({ benchDir: out, readme });
    const text = await readFile(readme, "utf8");
    expect(text).not.toContain("old table");
    expect(text).toContain(md.trim());
    expect(text.startsWith("# x\n\nintro\n")).toBe(true);
    expect(text.endsWith(`${SCOREBOARD_END}\nafter\n`)).toBe(true);
    // Idempotent: a second copy changes nothing.
    await updateReadme({ benchDir: out, readme });
    expect(await readFile(readme, "utf8")).toBe(text);
  });
  it("refuses a README without markers and a bench folder without a valid results.json", async () => {
    expect(() => replaceScoreboard("no markers", "x")).toThrow(/needs the markers/);
    const bad = join(dir, "bad");
    await mkdir(bad, { recursive: true });
    await writeFile(join(bad, "scoreboard.md"), "hand-written\n");
    await writeFile(join(bad, "results.json"), JSON.stringify({ kind: "nnspec.bench" }));
    await expect(updateReadme({ benchDir: bad, readme: join(dir, "README.md") })).rejects.toThrow(/results\.json/);
  });
});

describe("bar chart", () => {
  it("renders grouped log-scale bars with whiskers and a reference line to SVG and PNG", async () => {
    const c = await renderBarChart({
      title: "t",
      valueTitle: "v",
      scale: "log",
      referenceLines: [{ value: 1, label: "tolerance" }],
      bars: [
        { category: "a", series: "x", value: 0.5, lo: 0.4, hi: 0.6 },
        { category: "a", series: "y", value: 2e-3 },
        { category: "b", series: "x", value: 0 },
      ],
    });
    expect(c.droppedPoints).toBe(1); // 0 has no place on a log axis
    expect(svgSize(c.svg).width).toBeGreaterThan(500);
    expect(c.svg).toContain("tolerance");
    expect(c.pngWidth).toBeGreaterThan(1000);
  });
});

describe("devices in the report", () => {
  it("names every row's device and says plainly when an adapter is a CPU fallback", () => {
    const r = syntheticResults();
    const [ok, hung] = r.entries;
    const withDevices = {
      ...r,
      entries: [
        {
          ...ok!,
          id: "webgpu",
          device: "WGSL compute shaders, WebGPU google/swiftshader, CPU fallback adapter (software, not a GPU)",
        },
        { ...hung!, id: "wasm", device: "wasm simd, 2 threads" },
      ],
    };
    const note = deviceNote(withDevices);
    expect(note).toMatch(
      /^Rows webgpu ran on a software \(CPU\) fallback adapter: their speeds say nothing about a real GPU\./,
    );
    expect(note).toContain("webgpu: WGSL compute shaders, WebGPU google/swiftshader");
    expect(note).toContain("wasm: wasm simd, 2 threads.");
    expect(note.match(/CPU fallback, not a GPU/g)).toHaveLength(1);
    expect(deviceNote({ ...r, entries: [withDevices.entries[1]!] })).not.toMatch(/fallback/);
  });
});
