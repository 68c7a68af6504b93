import { readFileSync } from "node:fs";
import { SpecValidationError } from "@nnspec/spec";
import { listCnnFixtures, listNet222Fixtures } from "@nnspec/fixtures";
import type { Precision } from "@nnspec/spec";
import type { Check } from "./checks.ts";
import { net222Checks } from "./suites/net222.ts";
import { workbookChecks } from "./suites/workbook.ts";
import { cnnChecks } from "./suites/cnn.ts";

export interface SuiteOptions {
  /** Extra golden files (any kind), checked in addition to the committed ones. */
  readonly extraFixtures?: readonly string[];
  /** Only these fixture files instead of the committed ones. */
  readonly onlyFixtures?: readonly string[];
  /** Class workbooks (.xlsx) whose audited columns become 2-2-2 checks; default: $NNSPEC_WORKBOOK if set. */
  readonly workbooks?: readonly string[];
  /** The backend's precision: precision-specific checks (finite differences need float64) are generated only where they apply. */
  readonly precision?: Precision;
}

/** Workbooks named by the environment (CI points it at ../shared's class workbook). */
export function workbooksFromEnv(): string[] {
  return (process.env.NNSPEC_WORKBOOK ?? "").split(":").filter((p) => p.length > 0);
}

/** The kind of a golden file, read from its "kind" field (the file is fully validated by its loader later). */
export function fixtureKind(path: string): string {
  let kind: unknown;
  try {
    kind = (JSON.parse(readFileSync(path, "utf8")) as { kind?: unknown }).kind;
  } catch (err) {
    throw new SpecValidationError(path, [`cannot read golden file: ${(err as Error).message}`]);
  }
  if (kind !== "net222.trajectory" && kind !== "cnn.golden") throw new SpecValidationError(path, [`field "kind": expected "net222.trajectory" or "cnn.golden", got ${JSON.stringify(kind)}`]);
  return kind;
}

/** Every check of the suite, generated from the golden files: the suite is data-driven. */
export async function collectChecks(options: SuiteOptions = {}): Promise<Check[]> {
  const files = options.onlyFixtures ?? [...listNet222Fixtures(), ...listCnnFixtures(), ...(options.extraFixtures ?? [])];
  const net222 = files.filter((f) => fixtureKind(f) === "net222.trajectory");
  const cnn = files.filter((f) => fixtureKind(f) === "cnn.golden");
  const workbooks = options.workbooks ?? workbooksFromEnv();
  return [
    ...net222Checks(net222),
    ...(await workbookChecks(workbooks)),
    ...(await cnnChecks(cnn, options.precision ? { precision: options.precision } : {})),
  ];
}
