import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Manifest } from "@nnspec/spec";
import type { CheckResult } from "./checks.ts";
import { loadBackend, type LoadOptions } from "./load-backend.ts";
import { runChecks } from "./runner.ts";
import { buildReport, type ConformanceReport } from "./report.ts";
import { formatReportSummary, formatResultLine } from "./report-format.ts";
import { collectChecks, type SuiteOptions } from "./suite.ts";

export interface ConformanceRunOptions extends SuiteOptions, LoadOptions {
  readonly backend: string;
  readonly backendOptions?: Record<string, unknown>;
  readonly reportPath?: string;
  readonly log?: (line: string) => void;
}

/** Load a backend, run the whole suite against it, print as it goes, and optionally write the JSON report. */
export async function runConformance(o: ConformanceRunOptions): Promise<ConformanceReport> {
  const log = o.log ?? ((l: string) => console.log(l));
  const backend = await loadBackend(o.backend, o.backendOptions, o);
  try {
    const checks = await collectChecks({ precision: backend.manifest.precision, ...o });
    log(formatRunHeader(backend.manifest, checks.length));
    const results = await runChecks(backend, checks, { onResult: (r, i, n) => log(formatProgressLine(r, i, n)) });
    const report = buildReport(backend.manifest, results);
    log(formatReportSummary(report));
    if (o.reportPath) writeJsonAtomic(o.reportPath, report);
    return report;
  } finally {
    await backend.dispose?.();
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

export function writeJsonAtomic(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, JSON.stringify(data, null, 2) + "\n");
  renameSync(`${path}.tmp`, path);
}
