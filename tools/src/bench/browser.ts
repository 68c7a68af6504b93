import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { z } from "zod";
import { parseWith } from "@nnspec/spec";
import type { BenchJob } from "./protocol.ts";
import type { SpawnedWorker } from "./spawn-worker.ts";
import { BENCH_JOB_ENV } from "../browser/bench-commands.ts";
import { BENCH_PROJECT } from "../browser/bench-project.ts";

/**
 * Browser backends (gpujs on WebGL2, tfjs-webgl, the reference in Chromium) are benched inside headless Chromium by
 * the same measuring code as Node rows (measure.ts): the bench spawns `vitest run --project nnspec-bench` with
 * $NNSPEC_BENCH_JOB naming the job; that project (browser/bench-project.ts, in vitest.config.ts) opens one page
 * running bench/page/bench-page.ts against the backend's entry, and its commands forward the page's protocol
 * messages to fd 3 — so the parent reads, validates and times a browser row exactly like a Node worker.
 */
export interface BrowserTarget {
  readonly id: string;
  /** The backend package's entry file (its package.json "exports" "."), imported by the page. */
  readonly entry: string;
}

const packageSchema = z
  .object({ exports: z.union([z.string(), z.object({ ".": z.string() }).passthrough()]) })
  .passthrough();

/** Every workspace backend with a browser conformance test: "<folder>-chromium", benched through its package entry. */
export function browserTargets(repoRoot: string): BrowserTarget[] {
  const dir = join(repoRoot, "backends");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      if (!existsSync(join(dir, name, "test", "conformance.browser.test.ts"))) return [];
      const pkgFile = join(dir, name, "package.json");
      const pkg = parseWith(packageSchema, JSON.parse(readFileSync(pkgFile, "utf8")) as unknown, pkgFile);
      const entry = typeof pkg.exports === "string" ? pkg.exports : pkg.exports["."];
      return [{ id: `${name}-chromium`, entry: resolve(dir, name, entry) }];
    });
}

/**
 * Repetitions for a browser row. Under SwiftShader a batch-128 training step of a WebGL backend takes seconds, so
 * the CNN figures are capped to keep a default bench's browser rows within minutes; medians still need ≥ 3
 * (quick mode's 2 stays 2).
 */
export function browserReps(reps: BenchJob["reps"]): BenchJob["reps"] {
  return {
    train: Math.min(reps.train, 3),
    infer128: Math.min(reps.infer128, 3),
    infer1: Math.min(reps.infer1, 10),
    net222: Math.min(reps.net222, 3),
  };
}

/** The vitest child that runs one browser row (its messages arrive on fd 3, see browser/bench-commands.ts). */
export function browserWorker(o: {
  repoRoot: string;
  jobFile: string;
}): Pick<SpawnedWorker, "command" | "args" | "env" | "cwd"> {
  const vitest = createRequire(join(o.repoRoot, "package.json")).resolve("vitest/vitest.mjs");
  return {
    command: process.execPath,
    args: [
      vitest,
      "run",
      "--project",
      BENCH_PROJECT,
      "--root",
      o.repoRoot,
      "--config",
      join(o.repoRoot, "vitest.config.ts"),
    ],
    cwd: o.repoRoot,
    // No CI JSON report from this child: it would overwrite the outer test run's.
    env: { ...process.env, [BENCH_JOB_ENV]: o.jobFile, NNSPEC_VITEST_JSON: "" },
  };
}
