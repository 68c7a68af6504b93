import { readFileSync, writeSync } from "node:fs";
import type { BrowserCommand } from "vitest/node";
import { chromiumPeakRssBytes } from "../bench/process-tree.ts";

/**
 * Server side (the vitest process, Node) of the in-page bench (bench/page/bench-page.ts). Registered only by the
 * bench's own vitest project (bench-project.ts). The job comes from the file named by $NNSPEC_BENCH_JOB; each
 * protocol message from the page goes out on file descriptor 3, where `nnspec bench` listens exactly as for a
 * Node worker (spawn-worker.ts validates every line with workerMessageSchema). Data messages get the memory
 * figure here, because the page cannot see its own processes: Chromium's renderer + GPU RSS high-water marks.
 * Loaded by plain Node with the vitest config: node: imports and relative files only, no workspace packages.
 */
export const BENCH_JOB_ENV = "NNSPEC_BENCH_JOB";

export function benchPageCommands(): Record<string, BrowserCommand<never[]>> {
  const commands = {
    nnspecBenchJob: (): unknown => {
      const file = process.env[BENCH_JOB_ENV];
      if (!file) throw new Error(`$${BENCH_JOB_ENV} is not set: the in-page bench runs only under nnspec bench`);
      return JSON.parse(readFileSync(file, "utf8")) as unknown;
    },
    nnspecBenchSend: (_ctx, line: string) => {
      let message = line;
      const parsed = JSON.parse(line) as { type?: unknown };
      if (parsed.type === "data") {
        const bytes = chromiumPeakRssBytes(process.pid);
        if (bytes !== null) message = JSON.stringify({ ...parsed, rssBytes: bytes });
      }
      writeSync(3, `${message}\n`);
    },
  } satisfies Record<string, BrowserCommand<never[]>>;
  return commands;
}
