import { z } from "zod";
import { capabilitySchema, manifestSchema } from "@nnspec/spec";
import type { CheckResult } from "./checks.ts";
import { tally } from "./runner.ts";

const NON_FINITE: Readonly<Record<string, number>> = { Infinity, "-Infinity": -Infinity, NaN };
/**
 * A ratio as a report stores it: JSON has no Infinity (an error against an expected 0 has an infinite relative
 * error), so the report file writes non-finite numbers as strings (writeJsonAtomic); an old null reads as absent.
 */
const ratioSchema = z.preprocess(
  (v) => (v === null ? undefined : typeof v === "string" && v in NON_FINITE ? NON_FINITE[v] : v),
  z.union([z.number(), z.nan()]).optional(),
);

export const checkResultSchema = z.object({
  id: z.string(),
  capability: capabilitySchema,
  source: z.string(),
  status: z.enum(["pass", "fail", "error", "timeout", "not-implemented"]),
  worstRatio: ratioSchema,
  worstRelative: ratioSchema,
  detail: z.string(),
  ms: z.number(),
});
/** A run that stopped before its last check (interrupted, the backend could not be restarted, the judge crashed). */
export const incompleteSchema = z.object({
  reason: z.string(),
  /** Checks without a result; absent when the checks were never collected. */
  notRun: z.number().int().min(0).optional(),
});
export const conformanceReportSchema = z.object({
  kind: z.literal("nnspec.conformance-report"),
  createdAt: z.string(),
  /** Absent only when the run stopped before the backend answered with its manifest. */
  manifest: manifestSchema.optional(),
  summary: z.object({ passed: z.number(), failed: z.number(), notImplemented: z.number() }),
  results: z.array(checkResultSchema),
  /** Present when the report is partial; a complete run has a result for every check. */
  incomplete: incompleteSchema.optional(),
});
export type ConformanceReport = z.infer<typeof conformanceReportSchema>;
export type Incomplete = z.infer<typeof incompleteSchema>;

export function buildReport(
  manifest: ConformanceReport["manifest"],
  results: CheckResult[],
  incomplete?: Incomplete,
): ConformanceReport {
  return conformanceReportSchema.parse({
    kind: "nnspec.conformance-report",
    createdAt: new Date().toISOString(),
    ...(manifest ? { manifest } : {}),
    summary: tally(results),
    results,
    ...(incomplete ? { incomplete } : {}),
  });
}
