import cliProgress from "cli-progress";
import pc from "picocolors";
import type { BenchStatus } from "@nnspec/spec";
import { BENCH_PHASES, type BenchPhaseName } from "./protocol.ts";

/** What the bench reports while it runs. */
export interface BenchProgress {
  entryStart(id: string, index: number, total: number): void;
  phase(id: string, phase: BenchPhaseName): void;
  phaseEnd(id: string, phase: BenchPhaseName, status: BenchStatus, seconds: number, detail?: string): void;
  detail(id: string, text: string): void;
  note(text: string): void;
  stop(): void;
}

const STATUS_COLOR: Record<BenchStatus, (s: string) => string> = {
  ok: pc.green,
  failed: pc.red,
  "timed-out": pc.red,
  skipped: pc.dim,
};
const firstLine = (s: string | undefined) => (s ?? "").split("\n")[0]!.slice(0, 160);

/**
 * A cli-progress bar over all phases of all entries on a terminal (the current phase and its latest progress
 * text in the payload); a plain line per finished phase elsewhere (CI logs, pipes, tests).
 */
export function benchProgress(o: { tty: boolean; entries: number; write?: (line: string) => void }): BenchProgress {
  const write = o.write ?? ((line: string) => console.log(line));
  const perEntry = BENCH_PHASES.length;
  // A MultiBar with one bar: unlike SingleBar it can print log lines above the bar without tearing it.
  let multi: cliProgress.MultiBar | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let entryIndex = 0;
  const log = (line: string) => (multi ? multi.log(`${line}\n`) : write(line));
  if (o.tty) {
    multi = new cliProgress.MultiBar(
      {
        format: `bench {bar} {value}/{total} phases | {entry} · {phase} {detail}`,
        hideCursor: true,
        fps: 4,
      },
      cliProgress.Presets.shades_classic,
    );
    bar = multi.create(o.entries * perEntry, 0, { entry: "", phase: "", detail: "" });
  }
  return {
    entryStart(id, index, total) {
      entryIndex = index;
      bar?.update(index * perEntry, { entry: id, phase: "starting", detail: "" });
      if (!bar) write(pc.bold(`[${index + 1}/${total}] ${id}`));
    },
    phase(_id, phase) {
      bar?.update({ phase, detail: "" });
    },
    phaseEnd(id, phase, status, seconds, detail) {
      const i = BENCH_PHASES.indexOf(phase);
      bar?.update(entryIndex * perEntry + i + 1, { phase, detail: "" });
      const d = firstLine(detail);
      log(`  ${id} ${phase}: ${STATUS_COLOR[status](status)} ${seconds.toFixed(1)} s${d ? ` — ${d}` : ""}`);
    },
    detail(_id, text) {
      bar?.update({ detail: pc.dim(text) });
    },
    note(text) {
      log(pc.yellow(text));
    },
    stop() {
      bar?.update(o.entries * perEntry);
      multi?.stop();
      multi = undefined;
      bar = undefined;
    },
  };
}
