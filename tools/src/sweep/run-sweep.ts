import { readdir, rm } from "node:fs/promises";
import { resolve, join } from "node:path";
import { z } from "zod";
import {
  CLASS_CONFIG,
  CLASS_LEARNING_RATES,
  claims,
  learningRateSchema,
  net222ConfigSchema,
  parseWith,
  stepsSchema,
  type Backend,
  type Net222Config,
  type StepRecord,
} from "@nnspec/spec";
import { renderLineChart, writeChart } from "../plot/line-chart.ts";
import { writeFileAtomic } from "../plot/atomic-write.ts";
import { analyzeRun, type RunAnalysis } from "./analyze.ts";
import { checkTrainRecords } from "./records.ts";
import { combinedChart, runChart } from "./charts.ts";
import { jsonNumber, sweepSummarySchema, type SweepRow, type SweepSummary } from "./result.ts";
import { formatSweepTable } from "./table.ts";

export const DEFAULT_STEPS = 100;
export const DEFAULT_THRESHOLD = 1e-3;
export const DEFAULT_OUT_DIR = "out/sweep";
export const SUMMARY_FILE = "sweep.json";
export const COMBINED_BASENAME = "error-all-lr";
export const runBasename = (lr: number): string => `error-lr-${lr}`;

const optionsSchema = z.object({
  config: net222ConfigSchema.default(CLASS_CONFIG),
  configSource: z.string().optional(),
  lrs: z
    .array(learningRateSchema)
    .min(1, "at least one learning rate")
    .default([...CLASS_LEARNING_RATES])
    .refine((l) => new Set(l).size === l.length, { message: "learning rates must be distinct" }),
  steps: stepsSchema.default(DEFAULT_STEPS),
  threshold: z.number().positive().finite().default(DEFAULT_THRESHOLD),
  outDir: z.string().min(1).default(DEFAULT_OUT_DIR),
  /** false: compute the table and sweep.json only, no charts. */
  charts: z.boolean().default(true),
  /** Remove an earlier sweep's files from `outDir` first (sweep.json, every error chart), so nothing stale stays. */
  replace: z.boolean().default(false),
});

/** What a sweep writes into its folder: sweep.json and the error charts. */
export const isSweepOutput = (name: string): boolean =>
  name === SUMMARY_FILE ||
  /^error-lr-.+\.(svg|png)$/.test(name) ||
  new RegExp(`^${COMBINED_BASENAME}\\.(svg|png)$`).test(name);

/** Remove an earlier sweep from `dir` (only the files a sweep writes). */
export async function removeSweepOutput(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.filter(isSweepOutput)) await rm(join(dir, name), { force: true });
}

export interface SweepOptions extends z.input<typeof optionsSchema> {
  /** A loaded backend that claims `net222.train` (see loadBackend). The caller owns it (and disposes it). */
  backend: Backend;
  /** Called after each learning rate finishes (progress output). */
  onRun?: (lr: number, index: number, total: number) => void;
}

export interface SweepRun {
  lr: number;
  records: StepRecord[];
  analysis: RunAnalysis;
}

export interface SweepResult {
  /** Absolute path of the output folder. */
  outDir: string;
  summary: SweepSummary;
  /** Full trajectories, in the order of `summary.rows`. */
  runs: SweepRun[];
  /** Absolute paths of every file written. */
  files: string[];
  /** The printed comparison table. */
  table: string;
}

/** Train the 2-2-2 network once per learning rate, tabulate convergence, and write charts plus sweep.json. */
export async function runSweep(options: SweepOptions): Promise<SweepResult> {
  const { backend, onRun } = options;
  const o = parseWith(optionsSchema, { ...options, backend: undefined, onRun: undefined }, "sweep options");
  const config: Net222Config = o.config;
  if (!backend.net222 || !claims(backend, "net222.train"))
    throw new Error(`backend "${backend.manifest.name}" does not implement net222.train, which the sweep needs`);

  const outDir = resolve(o.outDir);
  const runs: SweepRun[] = [];
  if (o.replace) await removeSweepOutput(outDir);
  for (const [i, lr] of o.lrs.entries()) {
    const raw: unknown = await backend.net222.train(config, lr, o.steps);
    const records = checkTrainRecords(raw, o.steps, `backend "${backend.manifest.name}" train(η = ${lr})`);
    runs.push({ lr, records, analysis: analyzeRun(records, o.threshold) });
    onRun?.(lr, i, o.lrs.length);
  }

  const files: string[] = [];
  const rel = (base: string) => (o.charts ? { svg: `${base}.svg`, png: `${base}.png` } : null);
  if (o.charts) {
    for (const run of runs) {
      const chart = await renderLineChart(
        runChart(run.lr, run.records, run.analysis, backend.manifest.name, o.threshold),
      );
      const written = await writeChart(join(outDir, runBasename(run.lr)), chart);
      files.push(written.svg, written.png);
    }
    const combined = await renderLineChart(combinedChart(runs, o.steps, backend.manifest.name, o.threshold));
    const written = await writeChart(join(outDir, COMBINED_BASENAME), combined);
    files.push(written.svg, written.png);
  }

  const rows: SweepRow[] = runs.map(({ lr, analysis: a }) => ({
    lr,
    eTotalStart: jsonNumber(a.eTotalStart),
    eTotalFinal: jsonNumber(a.eTotalFinal),
    stepsToThreshold: a.stepsToThreshold,
    divergedAtStep: a.divergedAtStep,
    divergedQuantity: a.divergedQuantity,
    chart: rel(runBasename(lr)),
  }));
  const { name, version, precision, device } = backend.manifest;
  const summary = parseWith(
    sweepSummarySchema,
    {
      kind: "nnspec.sweep",
      formatVersion: 1,
      backend: { name, version, precision, device },
      configSource: o.configSource ?? "class values",
      config,
      steps: o.steps,
      threshold: o.threshold,
      rows,
      combinedChart: rel(COMBINED_BASENAME),
    },
    "sweep.json (about to be written)",
  );
  const summaryPath = join(outDir, SUMMARY_FILE);
  await writeFileAtomic(summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
  files.push(summaryPath);

  const table = formatSweepTable(
    runs.map((r) => ({ lr: r.lr, ...r.analysis })),
    summary,
  );
  return { outDir, summary, runs, files, table };
}
