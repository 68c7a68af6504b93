import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { TestProjectInlineConfiguration } from "vitest/config";
import { browserFixtureCommands } from "../../../conformance/src/browser/commands.ts";
import { chromiumBrowser } from "../../../conformance/src/browser/chromium.ts";
import { BENCH_JOB_ENV, benchPageCommands } from "./bench-commands.ts";

/** The in-page bench's test file: one test that runs every bench phase and reports through nnspecBenchSend. */
export const BENCH_PAGE_FILE = "tools/src/bench/page/bench-page.ts";
export const BENCH_PROJECT = "nnspec-bench";

/**
 * The vitest project that runs one browser row of `nnspec bench` in headless Chromium. It exists only while
 * $NNSPEC_BENCH_JOB names a job file (set by the bench for its own vitest child), so `pnpm test` never sees it.
 * The page imports the placeholder module nnspec-bench-page-backend.ts; the alias below swaps in the job's backend
 * entry, so Vite pre-bundles that backend's dependencies before the page loads rather than reloading it mid-run.
 */
export function benchBrowserProjects(o: { root: string }): TestProjectInlineConfiguration[] {
  const jobFile = process.env[BENCH_JOB_ENV];
  if (!jobFile) return [];
  // Only the entry is read here (plain Node, no zod in the config bundle); the page validates the whole job.
  const job = JSON.parse(readFileSync(jobFile, "utf8")) as { specifier?: unknown };
  if (typeof job.specifier !== "string")
    throw new Error(`${jobFile}: field "specifier": expected the backend's entry file`);
  const entry = resolve(o.root, job.specifier);
  return [
    {
      extends: true,
      optimizeDeps: { include: ["gpu.js"] },
      resolve: { alias: [{ find: /^\.\/nnspec-bench-page-backend\.ts$/, replacement: entry }] },
      // Vite serves files under the workspace only; a backend given as a path elsewhere (--backends file@chromium) needs its folder too.
      server: { fs: { allow: [o.root, dirname(entry)] } },
      test: {
        name: BENCH_PROJECT,
        include: [BENCH_PAGE_FILE],
        // The bench's own per-phase timers (spawn-worker.ts) end a hung page; vitest's must not cut in first.
        testTimeout: 0,
        browser: chromiumBrowser({ ...browserFixtureCommands(o.root), ...benchPageCommands() }),
      },
    },
  ];
}
