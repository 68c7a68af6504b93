import { claims, type Backend } from "@nnspec/spec";
import type { Check, CheckContext, CheckResult } from "./checks.ts";
import { errorMessage } from "./errors.ts";
import { validatedBackend } from "./validate.ts";

// Browser-safe: the page runs this too. Processes, timeouts of a whole run and report files are the caller's.

export interface RunHooks {
  onResult?(result: CheckResult, index: number, total: number): void;
}

/**
 * Who holds the backend: the runner asks for a fresh instance after a check timed out or the instance died
 * (a child process that exited, crashed or broke the protocol).
 */
export interface BackendSupervisor {
  /** The instance checks run against now. */
  current(): Backend;
  /** Why the current instance cannot serve any more, or undefined while it can. */
  lostReason(): string | undefined;
  /** Resolves with that reason once the current instance is lost; undefined where it cannot be lost (in-process). */
  lost(): Promise<string> | undefined;
  /** Replace the current instance; throws when no fresh one can be started. */
  restart(): Promise<void>;
}

export interface RunOptions extends RunHooks {
  /** Milliseconds one check may take (shared computations it waits for included); undefined = no limit. */
  timeoutMs?(check: Check): number | undefined;
  /** Stops the run at once (Ctrl-C): the check in flight gets no result, the run is incomplete with the reason. */
  signal?: AbortSignal;
}

export interface RunOutcome {
  readonly results: CheckResult[];
  /** Why the run stopped before its last check; absent when every check has a result. */
  readonly incomplete?: string;
}

type Event =
  | {
      readonly kind: "done";
      readonly pass: boolean;
      readonly worstRatio?: number;
      readonly worstRelative?: number;
      readonly detail: string;
    }
  | { readonly kind: "threw"; readonly err: unknown }
  | { readonly kind: "timeout"; readonly ms: number }
  | { readonly kind: "lost"; readonly reason: string }
  | { readonly kind: "aborted"; readonly reason: string };

/** What a thrown value says in a report: the backend's stack where it is one, one line for the judge's own errors. */
function describeThrown(err: unknown): string {
  if (!(err instanceof Error)) return errorMessage(err);
  if (err.name === "SpecValidationError" || err.name === "ProtocolError") return `${err.name}: ${err.message}`;
  return err.stack ?? `${err.name}: ${err.message}`;
}

const abortReason = (signal: AbortSignal) => errorMessage(signal.reason);

/**
 * Run the checks a backend claims; everything else is reported "not implemented". A check that throws is an
 * error, one that takes longer than its timeout a "timeout", one whose backend dies under it an error naming how;
 * after the last two the run goes on with a fresh instance (when a supervisor can give one).
 */
export async function runSuite(
  backend: Backend | BackendSupervisor,
  checks: readonly Check[],
  o: RunOptions = {},
): Promise<RunOutcome> {
  // A supervisor restarts the backend after a timeout or a crash; a plain backend goes on as it is (fresh memo).
  const restartable = !("manifest" in backend);
  const supervisor: BackendSupervisor = "manifest" in backend ? fixed(backend) : backend;
  const fresh = (): CheckContext => {
    const b = validatedBackend(supervisor.current());
    return { backend: b, precision: b.manifest.precision, memo: new Map<string, Promise<unknown>>() };
  };
  let ctx = fresh();
  const results: CheckResult[] = [];
  for (const [i, check] of checks.entries()) {
    if (o.signal?.aborted) return { results, incomplete: abortReason(o.signal) };
    const base = { id: check.id, capability: check.capability, source: check.source };
    let result: CheckResult;
    if (!claims(ctx.backend, check.capability)) {
      result = { ...base, status: "not-implemented", detail: `capability ${check.capability} not claimed`, ms: 0 };
    } else {
      const t0 = performance.now();
      const ev = await runOne(check, ctx, supervisor, o);
      const ms = performance.now() - t0;
      if (ev.kind === "aborted") return { results, incomplete: ev.reason };
      // A check that threw because its backend died is the death's failure, named as such.
      const lost = ev.kind === "lost" ? ev.reason : ev.kind === "threw" ? supervisor.lostReason() : undefined;
      if (ev.kind === "done")
        result = {
          ...base,
          status: ev.pass ? "pass" : "fail",
          worstRatio: ev.worstRatio,
          worstRelative: ev.worstRelative,
          detail: ev.detail,
          ms,
        };
      else if (ev.kind === "timeout")
        result = {
          ...base,
          status: "timeout",
          detail: `no result within ${fmtS(ev.ms)} (check timeout)${restartable ? "; the backend was restarted" : ""}`,
          ms,
        };
      else if (lost !== undefined)
        result = { ...base, status: "error", detail: `the backend process stopped: ${lost}`, ms };
      else result = { ...base, status: "error", detail: `threw: ${describeThrown((ev as { err: unknown }).err)}`, ms };
      if (ev.kind === "timeout" || lost !== undefined) {
        // Memoised work of the old instance is gone with it; the next checks start over on a fresh one.
        try {
          await supervisor.restart();
        } catch (err) {
          results.push(result);
          o.onResult?.(result, i, checks.length);
          return {
            results,
            incomplete: `the backend could not be restarted after ${check.id} (${result.status}): ${errorMessage(err)}`,
          };
        }
        ctx = fresh();
      }
    }
    results.push(result);
    o.onResult?.(result, i, checks.length);
  }
  return { results };
}

/** The in-process runner of old: one backend, nothing to restart (a timeout only drops the shared memo). */
function fixed(backend: Backend): BackendSupervisor {
  return { current: () => backend, lostReason: () => undefined, lost: () => undefined, restart: async () => undefined };
}

const fmtS = (ms: number) => `${+(ms / 1000).toFixed(3)} s`;

async function runOne(check: Check, ctx: CheckContext, supervisor: BackendSupervisor, o: RunOptions): Promise<Event> {
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  const cleanups: Array<() => void> = [];
  try {
    // A synchronous throw is a rejection too; the check's promise is always handled (it may settle after we moved on).
    const running = Promise.resolve().then(() => check.run(ctx));
    const events: Array<Promise<Event>> = [
      running.then(
        (out): Event => ({ kind: "done", ...out }),
        (err: unknown): Event => ({ kind: "threw", err }),
      ),
    ];
    const ms = o.timeoutMs?.(check);
    if (ms !== undefined && Number.isFinite(ms))
      events.push(
        new Promise((r) => {
          timers.push(setTimeout(() => r({ kind: "timeout", ms }), ms));
        }),
      );
    const lost = supervisor.lost();
    if (lost) events.push(lost.then((reason): Event => ({ kind: "lost", reason })));
    const signal = o.signal;
    if (signal) {
      events.push(
        new Promise((r) => {
          const on = () => r({ kind: "aborted", reason: abortReason(signal) });
          signal.addEventListener("abort", on, { once: true });
          cleanups.push(() => signal.removeEventListener("abort", on));
        }),
      );
    }
    return await Promise.race(events);
  } finally {
    for (const t of timers) clearTimeout(t);
    for (const c of cleanups) c();
  }
}

/** The results of a run (for callers that need no supervisor, timeout or report of incompleteness). */
export async function runChecks(
  backend: Backend,
  checks: readonly Check[],
  hooks: RunHooks = {},
): Promise<CheckResult[]> {
  return (await runSuite(backend, checks, hooks)).results;
}

export interface Tally {
  passed: number;
  failed: number;
  notImplemented: number;
}

export function tally(results: readonly CheckResult[]): Tally {
  return {
    passed: results.filter((r) => r.status === "pass").length,
    failed: results.filter((r) => r.status === "fail" || r.status === "error" || r.status === "timeout").length,
    notImplemented: results.filter((r) => r.status === "not-implemented").length,
  };
}
