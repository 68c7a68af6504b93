import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CAPABILITIES, SpecValidationError } from "@nnspec/spec";
import { createBackend, VERSION, type ReferenceOptions } from "../src/index.ts";

const pkgVersion = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

async function rejection(options: Record<string, unknown>): Promise<SpecValidationError> {
  const e: unknown = await createBackend(options as ReferenceOptions).then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof SpecValidationError)) throw new Error(`expected a SpecValidationError, got ${String(e)}`);
  expect(e.message).not.toContain("\n");
  return e;
}

describe("reference backend options", () => {
  it("defaults to float64 and claims every capability under its package.json version", async () => {
    const { manifest } = await createBackend({ threads: 1 });
    expect(manifest.precision).toBe("float64");
    expect(manifest.device).toContain("Float64Array");
    expect(manifest.version).toBe(pkgVersion);
    expect(VERSION).toBe(pkgVersion);
    expect(manifest.capabilities).toEqual([...CAPABILITIES]);
  });

  it("accepts float32 and an explicitly undefined precision", async () => {
    expect((await createBackend({ precision: "float32", threads: 1 })).manifest.device).toContain("Float32Array");
    expect((await createBackend({ precision: undefined, threads: 1 })).manifest.precision).toBe("float64");
  });

  it("rejects a precision it does not compute in, naming the option and the precisions it offers", async () => {
    const e = await rejection({ precision: "float16" });
    expect(e.message).toBe(
      `reference backend: option "precision": "float16" is not offered (the reference backend offers float64, float32)`,
    );
  });

  it("rejects bad threads and unknown options", async () => {
    expect((await rejection({ threads: 3 })).message).toBe(
      `reference backend: option "threads": must be 1 or 2, got 3`,
    );
    expect((await rejection({ precison: "float32" })).message).toBe(`reference backend: unknown option "precison"`);
  });
});
