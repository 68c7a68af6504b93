import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import type { BenchEntry } from "@nnspec/spec";
import { cleanupOnExit } from "@nnspec/conformance/cli";
import { killTree } from "./process-tree.ts";
import { BENCH_PHASES, workerMessageSchema, type BenchPatch, type BenchPhaseName } from "./protocol.ts";

export interface WorkerEvents {
  onPhase?(phase: BenchPhaseName): void;
  onPhaseEnd?(phase: BenchPhaseName, status: BenchEntry["status"], seconds: number, detail?: string): void;
  onProgress?(text: string): void;
}

export interface SpawnedWorker {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Seconds one phase may take before the process is killed and the phase reported as timed out. */
  readonly timeoutSeconds: number;
  /** Phases that get a different limit (MNIST training scales with its budget). */
  readonly phaseTimeouts?: Partial<Record<BenchPhaseName, number>>;
  readonly spawnedAt: number;
}

/** What came back from a worker: its phases and the merged data patches. */
export interface WorkerOutcome {
  phases: BenchEntry["phases"];
  patch: Omit<BenchPatch, "speed" | "note"> & { speed: NonNullable<BenchPatch["speed"]> };
  notes: string[];
  rssBytes: number | null;
  wallSeconds: number;
  /** Set when the process ended abnormally (crash, kill, timeout) rather than saying "done". */
  failure: { phase: string; message: string; timedOut: boolean } | null;
}

function lines(stream: Readable, onLine: (line: string) => void): void {
  let buf = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
}

/**
 * Run one worker process and collect its messages (fd 3, JSON lines). Each phase gets `timeoutSeconds`; when a
 * phase overruns, the process group is killed (SIGKILL: a busy-looping backend cannot react to anything gentler)
 * and the phase is reported as timed out. A crash reports the phase it was in with the tail of stderr.
 */
export function runWorker(w: SpawnedWorker, events: WorkerEvents = {}): Promise<WorkerOutcome> {
  return new Promise((resolvePromise) => {
    const child = spawn(w.command, [...w.args], {
      stdio: ["ignore", "pipe", "pipe", "pipe"],
      env: w.env ?? process.env,
      detached: true,
      ...(w.cwd ? { cwd: w.cwd } : {}),
    });
    const out: WorkerOutcome = {
      phases: [],
      patch: { speed: {} },
      notes: [],
      rssBytes: null,
      wallSeconds: 0,
      failure: null,
    };
    let current: { name: BenchPhaseName; t0: number } | null = null;
    let done = false;
    let timedOut = false;
    let stderrTail = "";
    let timer: NodeJS.Timeout | undefined;

    // The whole group and every descendant (SIGKILL): backends may have spawned helpers, and Playwright starts
    // Chromium in a group of its own.
    const kill = () => {
      if (child.pid !== undefined) killTree(child.pid);
      else child.kill("SIGKILL");
    };
    let limit = w.timeoutSeconds;
    const arm = (phase?: BenchPhaseName) => {
      clearTimeout(timer);
      limit = (phase && w.phaseTimeouts?.[phase]) ?? w.timeoutSeconds;
      timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, limit * 1000);
    };
    arm(); // start-up counts against the first phase's budget too
    // Workers run in a process group of their own: a Ctrl-C of the bench must take them down with it.
    const release = cleanupOnExit(kill);

    const onMessage = (line: string) => {
      if (line.trim() === "") return;
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        out.notes.push(`worker sent a line that is not JSON: ${line.slice(0, 200)}`);
        return;
      }
      const parsed = workerMessageSchema.safeParse(json);
      if (!parsed.success) {
        out.notes.push(
          `worker sent an invalid message (${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")})`,
        );
        return;
      }
      const m = parsed.data;
      if (m.type === "phase") {
        current = { name: m.name, t0: performance.now() };
        arm(m.name);
        events.onPhase?.(m.name);
      } else if (m.type === "phase-end") {
        const seconds = current ? (performance.now() - current.t0) / 1000 : 0;
        out.phases.push({ name: m.name, status: m.status, seconds, ...(m.detail ? { detail: m.detail } : {}) });
        events.onPhaseEnd?.(m.name, m.status, seconds, m.detail);
        current = null;
      } else if (m.type === "progress") {
        events.onProgress?.(m.text);
      } else if (m.type === "data") {
        const { speed, note, ...rest } = m.patch;
        Object.assign(out.patch, rest);
        if (speed) Object.assign(out.patch.speed, speed);
        if (note) out.notes.push(note);
        if (m.rssBytes !== undefined) out.rssBytes = m.rssBytes;
      } else {
        done = true;
      }
    };
    lines(child.stdio[3] as Readable, onMessage);
    // Worker stdout/stderr are the backend's own chatter: keep the end of stderr for crash reports, drop stdout.
    child.stdout!.resume();
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (s: string) => {
      stderrTail = (stderrTail + s).slice(-4000);
    });

    child.on("error", (err) => {
      out.failure = { phase: "load", message: `cannot start ${w.command}: ${err.message}`, timedOut: false };
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      release();
      out.wallSeconds = (Date.now() - w.spawnedAt) / 1000;
      const at: BenchPhaseName | null = current ? (current as { name: BenchPhaseName }).name : null;
      const phase = at ?? BENCH_PHASES.find((p) => !out.phases.some((x) => x.name === p)) ?? "load";
      if (timedOut) {
        out.failure = { phase, message: `no result within ${limit} s; killed`, timedOut: true };
      } else if (!done && !out.failure) {
        const why = signal ? `killed by ${signal}` : `exited with code ${code}`;
        out.failure = {
          phase,
          message: `worker ${why} before finishing${stderrTail.trim() ? `:\n${stderrTail.trim().split("\n").slice(-12).join("\n")}` : ""}`,
          timedOut: false,
        };
      }
      if (out.failure && at) {
        const seconds = (performance.now() - current!.t0) / 1000;
        out.phases.push({
          name: at,
          status: out.failure.timedOut ? "timed-out" : "failed",
          seconds,
          detail: out.failure.message,
        });
        events.onPhaseEnd?.(at, out.failure.timedOut ? "timed-out" : "failed", seconds, out.failure.message);
      }
      resolvePromise(out);
    });
  });
}
