/**
 * What `nnspec conformance --browser` (run.ts, Node) and its page (page.ts, Chromium) say to each other over the
 * Vite server they share. Types and pure helpers only: safe on both sides.
 */
import type { Manifest } from "@nnspec/spec";
import type { CheckResult } from "../checks.ts";

/** URL prefix of the run's own endpoints on the Vite server. */
export const ENDPOINT = "/__nnspec";

/** The page's settings, inlined into the HTML page by the server. */
export interface PageConfig {
  /** The specifier the user gave (package name or path), for messages. */
  readonly backend: string;
  readonly backendOptions: Record<string, unknown>;
  readonly onlyFixtures?: readonly string[];
  readonly extraFixtures?: readonly string[];
  /** The CLI's working folder: relative fixture paths are taken from it, as in Node. */
  readonly cwd: string;
  readonly fixtureDirs: { readonly net222: string; readonly cnn: string };
}

/** Where in the page a failure happened: importing the backend, creating it, collecting checks, running them. */
export type PagePhase = "load" | "create" | "suite" | "run";

export type PageMessage =
  | { readonly type: "backend"; readonly manifest: Manifest }
  | { readonly type: "start"; readonly total: number }
  | { readonly type: "result"; readonly index: number; readonly total: number; readonly result: CheckResult }
  | { readonly type: "done" }
  | {
      readonly type: "error";
      readonly phase: PagePhase;
      readonly name: string;
      readonly message: string;
      readonly stack?: string;
    };

/** Reply of the fixture endpoint when a file cannot be served. */
export interface FixtureErrorReply {
  readonly missing: boolean;
  readonly message: string;
}

// JSON has no Infinity or NaN (a diverged check's worst ratio is ∞): they travel as tagged strings.
const NON_FINITE = "__nnspec_nonfinite:";

export function encodeMessage(m: PageMessage): string {
  return JSON.stringify(m, (_k, v: unknown) =>
    typeof v === "number" && !Number.isFinite(v) ? `${NON_FINITE}${String(v)}` : v,
  );
}

export function decodeMessage(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown) =>
    typeof v === "string" && v.startsWith(NON_FINITE) ? Number(v.slice(NON_FINITE.length)) : v,
  );
}
