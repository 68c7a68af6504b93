import cliProgress from "cli-progress";
import pc from "picocolors";
import type { TrainHooks } from "./train-cnn.ts";

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

/**
 * Progress for `nnspec train`: a cli-progress bar per epoch on a terminal; on anything else (CI logs, pipes) a
 * plain line every `logEvery` batches, since redrawn bars turn into noise there.
 */
export function progressHooks(o: { tty: boolean; logEvery: number; write?: (line: string) => void }): TrainHooks {
  const write = o.write ?? ((line: string) => console.log(line));
  let bar: cliProgress.SingleBar | undefined;
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    onEpochStart(epoch, epochs, total) {
      if (!o.tty) return;
      bar = new cliProgress.SingleBar(
        {
          format: `epoch ${epoch}/${epochs} {bar} {percentage}% | {value}/{total} img | loss {loss} | acc {acc} | {speed} img/s | ETA {eta_formatted}`,
          hideCursor: true,
          etaBuffer: 50,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { loss: "-", acc: "-", speed: "-" });
    },
    onBatch(p) {
      if (bar) {
        bar.update(p.seen, {
          loss: p.runningLoss.toFixed(4),
          acc: pct(p.runningAccuracy),
          speed: p.imagesPerSecond.toFixed(0),
        });
      } else if (p.batch % o.logEvery === 0 || p.batch === p.batches) {
        const eta = (p.total - p.seen) / Math.max(p.imagesPerSecond, 1e-9);
        write(
          `epoch ${p.epoch}/${p.epochs} batch ${p.batch}/${p.batches}: loss ${p.runningLoss.toFixed(4)}, acc ${pct(p.runningAccuracy)}, ${p.imagesPerSecond.toFixed(0)} img/s, lr ${p.lr.toExponential(3)}, epoch ETA ${eta.toFixed(0)} s`,
        );
      }
    },
    onEvalStart(epoch) {
      if (!bar) return;
      stopBar();
      write(pc.dim(`epoch ${epoch}: evaluating on the test set…`));
    },
    onEpoch(e) {
      write(
        pc.bold(
          `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)} acc ${pct(e.trainAccuracy)} | test loss ${e.testLoss.toFixed(4)} acc ${pct(e.testAccuracy)} | ${e.imagesPerSecond.toFixed(0)} img/s, ${e.trainSeconds.toFixed(1)} s train + ${e.evalSeconds.toFixed(1)} s eval`,
        ),
      );
    },
    onCheckpoint(path) {
      stopBar();
      write(`  checkpoint saved: ${path}`);
    },
    onStop() {
      stopBar();
    },
  };
}
