import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchResultsSchema, type BenchResults } from "@nnspec/spec";
import { BENCH_CHECK_GROUPS } from "@nnspec/spec";
import { entryOf, machine } from "../src/bench/run-bench.ts";
import { benchSettings, parseTargets } from "../src/bench/plan.ts";
import { mainTable } from "../src/bench/format.ts";

// Browser rows of `nnspec bench`: the real in-page path (vitest browser project → headless Chromium → fd 3).

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = join(repoRoot, "tools/bin/nnspec.js");

function nnspec(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: repoRoot, env: { ...process.env, NO_COLOR: "1", ...env }, timeout: 170_000, maxBuffer: 1 << 24 },
      (err, stdout, stderr) => {
        ok({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** Live processes (zombies have no environ) whose environment carries `marker`: what a run left behind. */
function processesWith(marker: string): string[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, "latin1").split("\0").includes(marker)
          ? [`${p}: ${readFileSync(`/proc/${p}/cmdline`, "latin1").replace(/\0/g, " ").slice(0, 120)}`]
          : [];
      } catch {
        return [];
      }
    });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-bench-browser-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const readResults = (out: string): BenchResults =>
  benchResultsSchema.parse(JSON.parse(readFileSync(join(out, "results.json"), "utf8")));

describe("nnspec bench: a browser row measured inside headless Chromium", () => {
  it("reference-chromium gets the same figures as a Node row: accuracy per group, speeds, start-up, memory", async () => {
    const out = join(dir, "reference-chromium");
    const r = await nnspec([
      "bench",
      "--quick",
      "--backends",
      "reference-chromium",
      "--no-peer",
      "--out",
      out,
      "--timeout-s",
      "120",
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const results = readResults(out);
    const e = results.entries.find((x) => x.id === "reference-chromium")!;
    expect(e.status, e.failure?.message).toBe("ok");
    expect(e.kind).toBe("browser");
    expect(e.manifest).toMatchObject({ name: "reference", environment: "browser" });
    // The real suite ran in the page: every check of the quick golden subset, each group's worst ratio within tolerance.
    expect(e.conformance!.checks).toBeGreaterThan(50);
    expect(e.conformance!.passed).toBe(e.conformance!.checks);
    expect(e.conformance!.groups.map((g) => g.group).sort()).toEqual([...BENCH_CHECK_GROUPS].sort());
    for (const g of e.conformance!.groups) expect(g.worstRatio!).toBeLessThanOrEqual(1);
    for (const s of Object.values(e.speed)) {
      expect(s).not.toBeNull();
      expect(s!.reps).toBe(s!.unit === "images/s" && s === e.speed.inferImagesPerSecondBatch1 ? 10 : 2);
      expect(s!.min).toBeLessThanOrEqual(s!.median);
      expect(s!.median).toBeLessThanOrEqual(s!.max);
      expect(s!.median).toBeGreaterThan(0);
    }
    // Start-up from spawning vitest: page running, then the backend's first result.
    expect(e.startup!.processMs).toBeGreaterThan(0);
    expect(e.startup!.firstResultMs).toBeGreaterThan(e.startup!.processMs);
    expect(e.memoryKind).toBe("chromium-renderer-gpu");
    expect(e.peakRssBytes!).toBeGreaterThan(50 * 2 ** 20);
    expect(e.notes.join("\n")).toMatch(/JS heap high-water mark in the page .* \d+ MiB/);
    expect(e.phases.map((p) => [p.name, p.status])).toEqual([
      ["load", "ok"],
      ["conformance", "ok"],
      ["net222-speed", "ok"],
      ["train-speed", "ok"],
      ["infer-speed", "ok"],
      ["mnist-train", "skipped"],
    ]);
    expect(e.phases.at(-1)!.detail).toMatch(/not run in the browser/);
    const md = await readFile(join(out, "scoreboard.md"), "utf8");
    expect(md).toMatch(/\| reference-chromium \| float64 \| ok \| \d+\/\d+ \|.*\| \d+ MiB \(Chromium\) \|/);
    expect(md).toMatch(/Rows `\*-chromium` run in headless Chromium/);
  }, 180_000);

  it("a page that hangs is killed with Chromium when its phase overruns, and the row says timed-out in that phase", async () => {
    const hang = join(dir, "hang-page.mjs");
    await writeFile(hang, "export async function createBackend() { for (;;) {} }\n");
    const marker = `NNSPEC_BENCH_TEST_MARK=${process.pid}-${Date.now()}`;
    const out = join(dir, "hang");
    const r = await nnspec(
      ["bench", "--quick", "--no-peer", "--backends", `${hang}@chromium`, "--timeout-s", "30", "--out", out],
      { [marker.split("=")[0]!]: marker.split("=")[1]! },
    );
    // A row that only timed out is incomplete, not a fault found (README, "When things go wrong": exit 3).
    expect(r.code, r.stderr).toBe(3);
    const e = readResults(out).entries[0]!;
    expect(e).toMatchObject({
      id: "hang-page-chromium",
      kind: "browser",
      status: "timed-out",
      failure: { phase: "load" },
    });
    expect(e.failure!.message).toMatch(/no result within 30 s; killed/);
    // The page reached the load phase (its "phase" message arrived; start-up takes seconds, well under 30) before hanging in the backend.
    expect(e.phases[0]).toMatchObject({ name: "load", status: "timed-out" });
    expect(e.phases.slice(1).every((p) => p.status === "skipped")).toBe(true);
    // vitest and Chromium (a process group of its own) are gone.
    await new Promise((ok) => setTimeout(ok, 500));
    expect(processesWith(marker)).toEqual([]);
  }, 120_000);
});

describe("browser rows in the tables", () => {
  it("get a ratio to the PyTorch peer for every speed, and their memory labelled as Chromium's", () => {
    const stats = (m: number, unit = "images/s") => ({ median: m, min: m, max: m, reps: 2, unit });
    const speed = {
      net222StepsPerSecond: stats(1000, "steps/s"),
      trainImagesPerSecond: stats(10),
      inferImagesPerSecondBatch1: stats(20),
      inferImagesPerSecondBatch128: stats(40),
    };
    const outcome = (rss: number) => ({
      phases: [],
      notes: [],
      rssBytes: rss,
      wallSeconds: 1,
      failure: null,
      patch: { speed },
    });
    const page = entryOf(parseTargets("reference-chromium")[0]!, 0, outcome(300 * 2 ** 20));
    const peer = entryOf({ id: "pytorch", kind: "peer", specifier: "torch", options: {} }, 0, {
      ...outcome(100 * 2 ** 20),
      patch: {
        speed: {
          net222StepsPerSecond: stats(4000, "steps/s"),
          trainImagesPerSecond: stats(40),
          inferImagesPerSecondBatch1: stats(10),
          inferImagesPerSecondBatch128: stats(80),
        },
      },
    });
    const results = benchResultsSchema.parse({
      kind: "nnspec.bench",
      formatVersion: 1,
      startedAt: "",
      finishedAt: "",
      machine: machine(),
      settings: benchSettings({ quick: true, seed: 1, out: "x", timeoutS: 4, peer: true }).settings,
      peer: { available: true, reason: null, version: "2" },
      entries: [page, peer],
    });
    const t = mainTable(results);
    const row = t.rows[0]!;
    const cell = (h: string) => row[t.header.indexOf(h)]!;
    expect(
      [cell("2-2-2 steps/s"), cell("train img/s b128"), cell("infer img/s b1"), cell("infer img/s b128")].map(
        (c) => /×([\d.]+)$/.exec(c)?.[1],
      ),
    ).toEqual(["0.250", "0.250", "2.00", "0.500"]);
    expect(cell("peak RSS")).toBe("300 MiB (Chromium)");
    expect(t.rows[1]![t.header.indexOf("peak RSS")]).toBe("100 MiB");
  });
});
