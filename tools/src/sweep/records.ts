import { z } from "zod";
import { FORWARD_NAMES, WEIGHT_NAMES, parseWith, type StepRecord } from "@nnspec/spec";

/**
 * What a backend's `train` hands back, checked at the edge. Unlike the golden fixture schema, values may be NaN
 * or ±Infinity here: a diverging run is a result to report, not malformed output.
 */
const anyNumber = z.union([z.number(), z.nan()]);
const group = <K extends string>(names: readonly K[]) =>
  z.object(Object.fromEntries(names.map((k) => [k, anyNumber])) as Record<K, typeof anyNumber>).strict();
const recordSchema = z
  .object({
    step: z.number().int().min(0),
    weights: group(WEIGHT_NAMES),
    forward: group(FORWARD_NAMES),
    gradients: group(WEIGHT_NAMES),
  })
  .strict();

export function checkTrainRecords(data: unknown, steps: number, source: string): StepRecord[] {
  const records = parseWith(z.array(recordSchema), data, source);
  if (records.length !== steps + 1)
    throw new Error(`${source}: expected steps + 1 = ${steps + 1} records, got ${records.length}`);
  records.forEach((r, i) => {
    if (r.step !== i) throw new Error(`${source}: record ${i} has step ${r.step}`);
  });
  return records;
}
