import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { loadBackend, type LoadOptions } from "./load-backend.ts";
import { runChecks } from "./runner.ts";
import { buildReport, formatResultLine, formatReportSummary, type ConformanceReport } from "./report.ts";
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
    log(`conformance: ${backend.manifest.name} (${backend.manifest.precision}, ${backend.manifest.environment}) — ${checks.length} checks`);
    const results = await runChecks(backend, checks, { onResult: (r, i, n) => log(`[${String(i + 1).padStart(String(n).length)}/${n}] ${formatResultLine(r)}`) });
    const report = buildReport(backend.manifest, results);
    log(formatReportSummary(report));
    if (o.reportPath) writeJsonAtomic(o.reportPath, report);
    return report;
  } finally {
    await backend.dispose?.();
  }
}

export function writeJsonAtomic(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, JSON.stringify(data, null, 2) + "\n");
  renameSync(`${path}.tmp`, path);
}
