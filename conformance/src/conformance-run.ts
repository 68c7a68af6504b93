import type { Capability, Manifest } from "@nnspec/spec";
import type { Check, CheckResult } from "./checks.ts";
import { EXIT, IncompleteError, errorMessage } from "./errors.ts";
import type { LoadOptions } from "./load-backend.ts";
import { startHost, type BackendHost } from "./protocol/hosts.ts";
import { checkReportPath, ReportWriter, writeJsonAtomic } from "./report-file.ts";
import { buildReport, type ConformanceReport, type Incomplete } from "./report.ts";
import { formatReportSummary, formatResultLine } from "./report-format.ts";
import { runSuite } from "./runner.ts";
import { collectChecks, type SuiteOptions } from "./suite.ts";

export { writeJsonAtomic };

/**
 * Seconds one check may take before it is a `timeout` failure (and the backend is restarted), per kind of check.
 * A 2-2-2 check is milliseconds of work (a 100-step trajectory); a CNN check may wait for its golden case's shared
 * run (create, recorded forward, backward, two steps; ten forward/backward pairs for finite differences) on a slow
 * backend. `--check-timeout` sets one value for every kind.
 */
export const DEFAULT_CHECK_TIMEOUT_S: Readonly<Record<"net222" | "cnn", number>> = { net222: 60, cnn: 300 };

/** The kind of a check, by its capability: "net222.*" (trajectory and workbook checks) or "cnn.*". */
export function checkKind(capability: Capability): keyof typeof DEFAULT_CHECK_TIMEOUT_S {
  return capability.startsWith("cnn.") ? "cnn" : "net222";
}

export interface ConformanceRunOptions extends SuiteOptions, LoadOptions {
  /** Package name, path, short name, or "cmd:<command line>" (a program speaking docs/backend-protocol.md). */
  readonly backend: string;
  readonly backendOptions?: Record<string, unknown>;
  readonly reportPath?: string;
  readonly log?: (line: string) => void;
  /** Load the backend into this process (debugging) instead of isolating it in a child process. */
  readonly inProcess?: boolean;
  /** Seconds per check for every kind; default DEFAULT_CHECK_TIMEOUT_S by kind. */
  readonly checkTimeoutS?: number;
  /** Stops the run (e.g. on SIGINT): the report is written, marked incomplete with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** A run that did not finish. Its partial report was written (when asked for) and is attached. */
export class IncompleteRunError extends IncompleteError {
  constructor(
    message: string,
    readonly report: ConformanceReport,
  ) {
    super(message);
  }
}

/**
 * Load a backend, run the whole suite against it, print as it goes, and keep the JSON report on disk from the
 * start (rewritten as results arrive, final at the end). By default the backend runs in a child process: a crash,
 * `process.exit()`, an exhausted heap or a hung check is that check's failure, and the run goes on with a fresh
 * instance. Throws IncompleteRunError (exit 3) when the run stops early; the report then says why.
 */
export async function runConformance(o: ConformanceRunOptions): Promise<ConformanceReport> {
  const log = o.log ?? ((l: string) => console.log(l));
  if (o.reportPath) checkReportPath(o.reportPath);
  const writer = o.reportPath ? new ReportWriter(o.reportPath) : undefined;
  let manifest: Manifest | undefined;
  let checks: readonly Check[] | undefined;
  const results: CheckResult[] = [];
  let host: BackendHost | undefined;
  let finished = false;
  const partial = (reason: string): ConformanceReport =>
    buildReport(manifest, results, {
      reason,
      ...(checks ? { notRun: checks.length - results.length } : {}),
    } satisfies Incomplete);
  // On disk from the start: a run killed outright leaves this, not nothing (and a bad --report fails before any work).
  writer?.write(partial("the run did not finish: the judge was stopped before writing its final report"));
  // Whatever ends this process mid-run (process.exit() from an in-process backend, a crash of the judge, a second
  // Ctrl-C) leaves a report that says so, and the exit code says incomplete: never 0.
  const onExit = (code: number) => {
    const during = checks?.[results.length]?.id;
    const where = during ? `during ${during}` : "before the checks ran";
    const hint =
      host?.isolation === "in-process"
        ? " (in-process run: a backend that calls process.exit() ends it; drop --in-process to isolate the backend)"
        : "";
    const reason = `the process exited with code ${code} ${where}${hint}`;
    try {
      writer?.write(partial(reason));
    } catch {
      // Going down anyway; the report of the last write stays.
    }
    if (code !== EXIT.incomplete)
      console.error(`error: conformance run incomplete: ${reason}${writer ? `; partial report: ${writer.path}` : ""}`);
    process.exitCode = EXIT.incomplete;
  };
  process.on("exit", onExit);
  try {
    try {
      host = await startHost({ ...o, ...(o.signal ? { signal: o.signal } : {}) });
    } catch (err) {
      // A backend that cannot be created is the input's fault (exit 2, as it was); the report says so too.
      writer?.write(partial(`the backend could not be started: ${errorMessage(err)}`));
      throw err;
    }
    manifest = host.current().manifest;
    try {
      checks = await collectChecks({ precision: manifest.precision, ...o });
    } catch (err) {
      writer?.write(partial(`the checks could not be collected: ${errorMessage(err)}`));
      throw err;
    }
    log(formatRunHeader(manifest, checks.length));
    const timeoutS = (c: Check) => o.checkTimeoutS ?? DEFAULT_CHECK_TIMEOUT_S[checkKind(c.capability)];
    const outcome = await runSuite(host, checks, {
      timeoutMs: (c) => timeoutS(c) * 1000,
      ...(o.signal ? { signal: o.signal } : {}),
      onResult: (r, i, n) => {
        results.push(r);
        log(formatProgressLine(r, i, n));
        writer?.writeSoon(() =>
          partial("the run did not finish: the judge was stopped before writing its final report"),
        );
      },
    });
    if (outcome.incomplete !== undefined) {
      const report = partial(outcome.incomplete);
      writer?.write(report);
      log(formatReportSummary(report));
      throw new IncompleteRunError(
        `conformance run incomplete: ${outcome.incomplete}${writer ? `; partial report: ${writer.path}` : ""}`,
        report,
      );
    }
    const report = buildReport(manifest, results);
    writer?.write(report);
    log(formatReportSummary(report));
    finished = true;
    return report;
  } finally {
    process.off("exit", onExit);
    // A stopped run does not wait for a backend that may be hung: it is killed.
    if (finished) await host?.close().catch(() => undefined);
    else host?.kill();
  }
}

/** The first line of a run: backend, precision, environment, number of checks. */
export function formatRunHeader(m: Manifest, checks: number): string {
  return `conformance: ${m.name} (${m.precision}, ${m.environment}) — ${checks} checks`;
}

/** One check's line while a run goes: "[ i/n] status ratio id". */
export function formatProgressLine(r: CheckResult, index: number, total: number): string {
  return `[${String(index + 1).padStart(String(total).length)}/${total}] ${formatResultLine(r)}`;
}
