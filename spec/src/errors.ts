import type { ZodError, ZodType, ZodTypeDef } from "zod";

/** A validation failure at an edge (config, fixture, CLI argument): names the source and every bad field. */
export class SpecValidationError extends Error {
  readonly source: string;
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`${source}: invalid input\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "SpecValidationError";
    this.source = source;
    this.problems = problems;
  }
}

function describeIssue(issue: ZodError["issues"][number]): string {
  const field = issue.path.length > 0 ? issue.path.join(".") : "(root)";
  if (issue.code === "invalid_type" && issue.received === "undefined") return `field "${field}": missing (expected ${issue.expected})`;
  if (issue.code === "invalid_type" && issue.received === "nan") return `field "${field}": is NaN (expected a finite number)`;
  if (issue.code === "invalid_type") return `field "${field}": expected ${issue.expected}, got ${issue.received}`;
  return `field "${field}": ${issue.message}`;
}

/** Parse `data` with `schema`; on failure throw an error that names `source` and each offending field. */
export function parseWith<Out, In = Out>(schema: ZodType<Out, ZodTypeDef, In>, data: unknown, source: string): Out {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  throw new SpecValidationError(source, result.error.issues.map(describeIssue));
}
