import pc from "picocolors";
import type { CheckResult } from "./checks.ts";
import type { ConformanceReport } from "./report.ts";

// Terminal formatting of results (Node): kept out of report.ts so the judge's root export stays browser-safe.

const fmtRatio = (r?: number) => (r === undefined ? "" : r === Infinity ? "∞" : r.toExponential(1));

/** One line per check: status, id, worst error as a multiple of the tolerance (≤ 1 passes). */
export function formatResultLine(r: CheckResult): string {
  const status = {
    pass: pc.green("pass"),
    fail: pc.red("FAIL"),
    error: pc.red("ERROR"),
    timeout: pc.red("TIMEOUT"),
    "not-implemented": pc.dim("not implemented"),
  }[r.status];
  const ratio =
    r.status === "pass" || r.status === "fail" ? `${fmtRatio(r.worstRatio).padStart(8)}× tol` : "".padStart(12);
  const line = `${status.padEnd(26)} ${ratio}  ${r.id}`;
  return r.status === "fail" || r.status === "error" || r.status === "timeout"
    ? `${line}\n${pc.red(`      ${r.detail.split("\n").slice(0, 6).join("\n      ")}`)}`
    : line;
}

export function formatReportSummary(report: ConformanceReport): string {
  const m = report.manifest;
  const s = report.summary;
  const worst = Math.max(0, ...report.results.filter((r) => r.status === "pass").map((r) => r.worstRatio ?? 0));
  return [
    ...(m ? [`${pc.bold(m.name)} ${m.version} — ${m.precision}, ${m.environment}, ${m.device}`] : []),
    `${s.passed} passed, ${s.failed} failed, ${s.notImplemented} not implemented (worst passing error ${fmtRatio(worst)}× tolerance)`,
    ...(report.incomplete
      ? [
          pc.red(
            `incomplete: ${report.incomplete.reason}${report.incomplete.notRun !== undefined ? ` (${report.incomplete.notRun} check(s) not run)` : ""}`,
          ),
        ]
      : []),
  ].join("\n");
}
