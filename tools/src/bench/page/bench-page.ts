import { commands } from "@vitest/browser/context";
import { it } from "vitest";
import { parseWith } from "@nnspec/spec";
import { suiteFixtureIO } from "@nnspec/conformance";
import { runMeasurements } from "../measure.ts";
import { benchJobSchema, type WorkerMessage } from "../protocol.ts";

/**
 * One browser row of `nnspec bench`, inside headless Chromium: the same measurements as the Node worker
 * (measure.ts), with the backend's browser entry (aliased in by browser/bench-project.ts), golden files read
 * through the vitest server, and every protocol message sent to the parent through the nnspecBenchSend command.
 */

const pageAt = Date.now();

/** Chromium's JS heap (performance.memory, non-standard and coarse without --enable-precise-memory-info). */
function jsHeapBytes(): number | undefined {
  return (performance as { memory?: { usedJSHeapSize?: number } }).memory?.usedJSHeapSize;
}

it("nnspec bench in Chromium", async () => {
  const job = parseWith(benchJobSchema, await commands.nnspecBenchJob(), "the bench job ($NNSPEC_BENCH_JOB)");
  // In order, whether awaited or not (progress lines are fire-and-forget).
  let queue: Promise<void> = Promise.resolve();
  const send = (m: WorkerMessage): Promise<void> =>
    (queue = queue.then(() => commands.nnspecBenchSend(JSON.stringify(m))));
  let heapPeak = 0;
  const sampleHeap = () => {
    heapPeak = Math.max(heapPeak, jsHeapBytes() ?? 0);
  };
  // Timers fire only between awaits; the samples at each result catch the rest.
  const sampler = setInterval(sampleHeap, 100);
  try {
    await runMeasurements({
      job,
      processAt: pageAt,
      io: await suiteFixtureIO(),
      send: (m) => {
        sampleHeap();
        // The JS heap peak travels as a note with the final (empty) data message; RSS is added by the server side.
        if (m.type === "data" && Object.keys(m.patch).length === 0 && heapPeak > 0) {
          return send({
            ...m,
            patch: {
              note: `JS heap high-water mark in the page (performance.memory.usedJSHeapSize, sampled): ${(heapPeak / 2 ** 20).toFixed(0)} MiB`,
            },
          });
        }
        return send(m);
      },
      loadBackend: async () => (await import("./nnspec-bench-page-backend.ts")).createBackend(job.options),
      memoryBytes: () => undefined,
      mnist: () => ({
        skip: "not run in the browser: MNIST is read with node:fs, and a full training budget under SwiftShader takes too long for the default bench (Node rows train it)",
      }),
    });
  } finally {
    clearInterval(sampler);
    await queue;
  }
});
