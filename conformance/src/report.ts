import { z } from "zod";
import pc from "picocolors";
import { capabilitySchema, manifestSchema } from "@nnspec/spec";
import type { CheckResult } from "./checks.ts";
import { tally } from "./runner.ts";

export const checkResultSchema = z.object({
  id: z.string(), capability: capabilitySchema, source: z.string(),
  status: z.enum(["pass", "fail", "error", "not-implemented"]),
  worstRatio: z.number().optional(), worstRelative: z.number().optional(),
  detail: z.string(), ms: z.number(),
});
export const conformanceReportSchema = z.object({
  kind: z.literal("nnspec.conformance-report"),
  createdAt: z.string(),
  manifest: manifestSchema,
  summary: z.object({ passed: z.number(), failed: z.number(), notImplemented: z.number() }),
  results: z.array(checkResultSchema),
});
export type ConformanceReport = z.infer<typeof conformanceReportSchema>;

export function buildReport(manifest: ConformanceReport["manifest"], results: CheckResult[]): ConformanceReport {
  return conformanceReportSchema.parse({ kind: "nnspec.conformance-report", createdAt: new Date().toISOString(), manifest, summary: tally(results), results });
}

const fmtRatio = (r?: number) => (r === undefined ? "" : r === Infinity ? "∞" : r.toExponential(1));

/** One line per check: status, id, worst error as a multiple of the tolerance (≤ 1 passes). */
export function formatResultLine(r: CheckResult): string {
  const status = { pass: pc.green("pass"), fail: pc.red("FAIL"), error: pc.red("ERROR"), "not-implemented": pc.dim("not implemented") }[r.status];
  const ratio = r.status === "pass" || r.status === "fail" ? `${fmtRatio(r.worstRatio).padStart(8)}× tol` : "".padStart(12);
  const line = `${status.padEnd(26)} ${ratio}  ${r.id}`;
  return r.status === "fail" || r.status === "error" ? `${line}\n${pc.red(`      ${r.detail.split("\n").slice(0, 6).join("\n      ")}`)}` : line;
}

export function formatReportSummary(report: ConformanceReport): string {
  const m = report.manifest;
  const s = report.summary;
  const worst = Math.max(0, ...report.results.filter((r) => r.status === "pass").map((r) => r.worstRatio ?? 0));
  return [
    `${pc.bold(m.name)} ${m.version} — ${m.precision}, ${m.environment}, ${m.device}`,
    `${s.passed} passed, ${s.failed} failed, ${s.notImplemented} not implemented (worst passing error ${fmtRatio(worst)}× tolerance)`,
  ].join("\n");
}
