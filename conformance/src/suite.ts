import { SpecValidationError } from "@nnspec/spec";
import {
  defaultFixtureIO,
  inBrowser,
  listCnnFixtures,
  listNet222Fixtures,
  type FixtureIO,
} from "@nnspec/fixtures/core";
import type { Precision } from "@nnspec/spec";
import type { Check } from "./checks.ts";
import { net222Checks } from "./suites/net222.ts";
import { cnnChecks } from "./suites/cnn.ts";

// This module runs in Node and in a browser (vitest browser mode): no node: imports here. The workbook suite
// (exceljs + fs) and the browser IO are imported lazily, each only where it applies.

export interface SuiteOptions {
  /** Extra golden files (any kind), checked in addition to the committed ones. */
  readonly extraFixtures?: readonly string[];
  /** Only these fixture files instead of the committed ones. */
  readonly onlyFixtures?: readonly string[];
  /** Class workbooks (.xlsx) whose audited columns become 2-2-2 checks; default: $NNSPEC_WORKBOOK if set (Node only). */
  readonly workbooks?: readonly string[];
  /** The backend's precision: precision-specific checks (finite differences need float64) are generated only where they apply. */
  readonly precision?: Precision;
  /** Where golden files are read from; default: the file system in Node, the vitest server in a browser. */
  readonly io?: FixtureIO;
}

/** Workbooks named by the environment (CI points it at ../shared's class workbook); none in a browser. */
export function workbooksFromEnv(): string[] {
  if (inBrowser()) return [];
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return (env?.NNSPEC_WORKBOOK ?? "").split(":").filter((p) => p.length > 0);
}

/** The IO for this environment: fs in Node, the vitest browser server's file commands in a browser. */
export async function suiteFixtureIO(): Promise<FixtureIO> {
  if (!inBrowser()) return defaultFixtureIO();
  const { browserFixtureIO } = await import("./browser/fixture-io.ts");
  return browserFixtureIO();
}

/** The kind of a golden file, read from its "kind" field (the file is fully validated by its loader later). */
export async function fixtureKind(path: string, io?: FixtureIO): Promise<string> {
  const files = io ?? (await suiteFixtureIO());
  let kind: unknown;
  try {
    kind = (JSON.parse(await files.readText(path)) as { kind?: unknown }).kind;
  } catch (err) {
    throw new SpecValidationError(path, [`cannot read golden file: ${(err as Error).message}`]);
  }
  if (kind !== "net222.trajectory" && kind !== "cnn.golden")
    throw new SpecValidationError(path, [
      `field "kind": expected "net222.trajectory" or "cnn.golden", got ${JSON.stringify(kind)}`,
    ]);
  return kind;
}

/** Every check of the suite, generated from the golden files: the suite is data-driven. */
export async function collectChecks(options: SuiteOptions = {}): Promise<Check[]> {
  const io = options.io ?? (await suiteFixtureIO());
  const files = options.onlyFixtures ?? [
    ...(await listNet222Fixtures(undefined, io)),
    ...(await listCnnFixtures(undefined, [], io)),
    ...(options.extraFixtures ?? []),
  ];
  const kinds = new Map<string, string>();
  for (const f of files) kinds.set(f, await fixtureKind(f, io));
  const workbooks = options.workbooks ?? workbooksFromEnv();
  if (workbooks.length > 0 && inBrowser())
    throw new Error("class workbooks are read with exceljs + fs: run them in Node, not in a browser");
  // Lazy: exceljs and node:fs stay out of the browser bundle.
  const workbook = workbooks.length > 0 ? await (await import("./suites/workbook.ts")).workbookChecks(workbooks) : [];
  return [
    ...(await net222Checks(
      files.filter((f) => kinds.get(f) === "net222.trajectory"),
      io,
    )),
    ...workbook,
    ...(await cnnChecks(
      files.filter((f) => kinds.get(f) === "cnn.golden"),
      { ...(options.precision ? { precision: options.precision } : {}), io },
    )),
  ];
}
