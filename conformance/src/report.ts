import { z } from "zod";
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
