import type { ZodError, ZodType, ZodTypeDef } from "zod";

/** A validation failure at an edge (config, fixture, CLI argument): names the source and every bad field. */
export class SpecValidationError extends Error {
  readonly source: string;
  readonly problems: readonly string[];
  /**
   * `oneLine`: "source: problem; problem" instead of a bulleted list, for a bad argument or option whose
   * problems each fit on a line (the CLI prints the message as it is).
   */
  constructor(source: string, problems: readonly string[], options: { readonly oneLine?: boolean } = {}) {
    // One problem is one line (the CLI prints messages as they are); several are a list.
    super(
      options.oneLine || problems.length === 1
        ? `${source}: ${problems.join("; ")}`
        : `${source}: invalid input\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    this.name = "SpecValidationError";
    this.source = source;
    this.problems = problems;
  }
}

function describeIssue(issue: ZodError["issues"][number], noun: "field" | "option"): string {
  const field = issue.path.length > 0 ? issue.path.join(".") : "(root)";
  // Options name the unknown keys themselves; files keep zod's wording (their callers' tests match it).
  if (noun === "option" && issue.code === "unrecognized_keys")
    return `unknown option${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
  if (issue.code === "invalid_type" && issue.received === "undefined")
    return `${noun} "${field}": missing (expected ${issue.expected})`;
  if (issue.code === "invalid_type" && issue.received === "nan")
    return `${noun} "${field}": is NaN (expected a finite number)`;
  if (issue.code === "invalid_type") return `${noun} "${field}": expected ${issue.expected}, got ${issue.received}`;
  return `${noun} "${field}": ${issue.message}`;
}

/** Parse `data` with `schema`; on failure throw an error that names `source` and each offending field. */
export function parseWith<Out, In = Out>(schema: ZodType<Out, ZodTypeDef, In>, data: unknown, source: string): Out {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  throw new SpecValidationError(
    source,
    result.error.issues.map((i) => describeIssue(i, "field")),
  );
}

/**
 * Parse the options a caller passed to a backend's `createBackend(options)` (undefined = none). On failure throw a
 * one-line SpecValidationError naming `source` (e.g. "reference backend") and each bad option, so the CLI reports
 * it as a usage error.
 */
export function parseOptions<Out, In = Out>(
  schema: ZodType<Out, ZodTypeDef, In>,
  options: unknown,
  source: string,
): Out {
  const result = schema.safeParse(options ?? {});
  if (result.success) return result.data;
  throw new SpecValidationError(
    source,
    result.error.issues.map((i) => describeIssue(i, "option")),
    { oneLine: true },
  );
}
