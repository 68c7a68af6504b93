import { z } from "zod";

/** A finite float64: rejects NaN and ±Infinity with a message that says which it was. */
export const finiteNumber = z.number({ invalid_type_error: "expected a number" }).superRefine((v, ctx) => {
  if (Number.isNaN(v)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: "is NaN (expected a finite number)" });
  else if (!Number.isFinite(v))
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `is ${v} (expected a finite number)` });
});

/** Typed float arrays a backend may hand back; values are compared in float64. */
export type FloatArray = Float32Array | Float64Array;
