import { readFileSync, writeSync } from "node:fs";
import { parseWith } from "@nnspec/spec";
import { loadWorkspaceBackend as loadBackend } from "../workspace-backends.ts";
import { loadMnist } from "../data/mnist.ts";
import { trainCnn } from "../train/train-cnn.ts";
import { runMeasurements } from "./measure.ts";
import { benchJobSchema, NO_MNIST, type WorkerMessage } from "./protocol.ts";

/**
 * The bench worker: one backend in its own Node process (so start-up and peak memory are its own, and a crash or
 * hang costs only its row). Spawned by spawn-worker.ts through worker-main.mjs; reports on fd 3 (protocol.ts).
 * The measurements themselves are measure.ts, shared with the in-page bench of browser rows.
 */

const processAt = Date.now();

function send(m: WorkerMessage): void {
  writeSync(3, `${JSON.stringify(m)}\n`);
}

async function main(): Promise<void> {
  const jobPath = process.argv[2];
  if (!jobPath) throw new Error("usage: worker <job.json>");
  const job = parseWith(benchJobSchema, JSON.parse(readFileSync(jobPath, "utf8")), jobPath);
  await runMeasurements({
    job,
    send,
    processAt,
    loadBackend: () => loadBackend(job.specifier, job.options),
    // maxRSS is in kilobytes (Node docs); the high-water mark so far, sent with every result so a later hang keeps it.
    memoryBytes: () => process.resourceUsage().maxRSS * 1024,
    mnist: (b) =>
      job.mnistDir === null
        ? { skip: NO_MNIST }
        : {
            run: async () => {
              const mnist = await loadMnist({ dataDir: job.mnistDir! });
              const s = job.settings;
              const record = await trainCnn(
                {
                  backend: b,
                  data: mnist,
                  epochs: s.epochs,
                  batchSize: s.batchSize,
                  maxLr: s.maxLr,
                  seed: s.seed,
                  ...(s.limit !== null ? { limit: s.limit } : {}),
                  ...(s.testLimit !== null ? { testLimit: s.testLimit } : {}),
                },
                {
                  onBatch: (p) => {
                    if (p.batch % 5 === 0 || p.batch === p.batches)
                      send({
                        type: "progress",
                        text: `epoch ${p.epoch}/${p.epochs} batch ${p.batch}/${p.batches}, loss ${p.runningLoss.toFixed(3)}`,
                      });
                  },
                  onEvalStart: (e) => send({ type: "progress", text: `epoch ${e}: evaluating` }),
                },
              );
              if (record.status !== "complete")
                throw new Error(
                  `training ${record.status} at epoch ${record.stop!.epoch}${record.stop!.batch ? `, batch ${record.stop!.batch}` : ""}: ${record.stop!.detail}`,
                );
              const last = record.epochs.at(-1)!;
              send({
                type: "data",
                rssBytes: process.resourceUsage().maxRSS * 1024,
                patch: {
                  training: {
                    epochs: record.recipe.epochs,
                    trainImages: record.trainImages,
                    testImages: record.testImages,
                    testAccuracy: last.testAccuracy,
                    testLoss: last.testLoss,
                    wallSeconds: record.wallSeconds,
                    imagesPerSecond: record.imagesPerSecond,
                    batchLoss: record.batchLoss,
                    epochTestAccuracy: record.epochs.map((e) => e.testAccuracy),
                  },
                },
              });
              return `test accuracy ${(100 * last.testAccuracy).toFixed(2)}%`;
            },
          },
  });
}

await main();
// Backends may leave worker threads or timers behind; the parent has everything it needs.
process.exit(0);
