import type { BenchCheckGroup, BenchConformance, Capability } from "@nnspec/spec";
import type { CheckResult } from "@nnspec/conformance";

/** The scoreboard's check group of a capability; saving and restoring momentum counts with the SGD steps. */
export function groupOf(capability: Capability): BenchCheckGroup {
  if (capability.startsWith("net222.")) return "net222";
  if (capability === "cnn.optimizer-state") return "cnn.step";
  return capability as Exclude<BenchCheckGroup, "net222">;
}

function tallyOf(results: readonly CheckResult[]) {
  const ran = results.filter((r) => r.status === "pass" || r.status === "fail");
  const ratios = ran.map((r) => r.worstRatio).filter((v): v is number => v !== undefined);
  // A non-finite ratio (NaN/Inf where a number was expected) has no finite "worst": null, and the fail count says why.
  const worst = ratios.length === 0 || ratios.some((v) => !Number.isFinite(v)) ? null : Math.max(...ratios);
  return {
    checks: results.length,
    passed: results.filter((r) => r.status === "pass").length,
    failed: results.filter((r) => r.status === "fail" || r.status === "error").length,
    notImplemented: results.filter((r) => r.status === "not-implemented").length,
    worstRatio: worst,
  };
}

/** Conformance results → the bench's accuracy figures: overall and per group, worst error as a multiple of tolerance. */
export function summarizeConformance(
  results: readonly CheckResult[],
  fixtures: readonly string[],
  wallSeconds: number,
): BenchConformance {
  const groups = new Map<BenchCheckGroup, CheckResult[]>();
  for (const r of results) {
    const g = groupOf(r.capability);
    groups.set(g, [...(groups.get(g) ?? []), r]);
  }
  return {
    ...tallyOf(results),
    wallSeconds,
    fixtures: [...fixtures],
    groups: [...groups].map(([group, rs]) => ({ group, ...tallyOf(rs) })),
  };
}
