import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { SpecValidationError } from "@nnspec/spec";
import { createBackend } from "../src/index.ts";

describe("wasm backend options", () => {
  it("defaults to every core", async () => {
    const backend = await createBackend();
    const cores = Math.min(64, availableParallelism());
    expect(backend.manifest.device).toBe(`wasm simd128 (AssemblyScript), ${cores} thread${cores > 1 ? "s" : ""}`);
    expect(backend.manifest.precision).toBe("float32");
    await backend.dispose?.();
  });

  it.each([
    [{ threads: 0 }, 'wasm backend: option "threads": must be an integer from 1 to 64, got 0'],
    [{ threads: 65 }, 'wasm backend: option "threads": must be an integer from 1 to 64, got 65'],
    [{ threads: 1.5 }, 'wasm backend: option "threads": must be an integer from 1 to 64, got 1.5'],
    [{ threads: Number.NaN }, 'wasm backend: option "threads": is NaN (expected a finite number)'],
    [{ threads: "2" }, 'wasm backend: option "threads": expected number, got string'],
    [
      { precision: "float64" },
      'wasm backend: option "precision": "float64" is not offered (the wasm backend computes in float32)',
    ],
    [{ thread: 2 }, 'wasm backend: unknown option "thread"'],
  ])("rejects %j with a one-line error naming the option", async (options, message) => {
    const error = await createBackend(options as never).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SpecValidationError);
    expect((error as Error).message).toBe(message);
    expect((error as Error).message).not.toContain("\n");
  });

  it("accepts precision float32 (callers generic over backends pass it)", async () => {
    const backend = await createBackend({ precision: "float32", threads: 1 });
    expect(backend.manifest.device).toBe("wasm simd128 (AssemblyScript), 1 thread");
    await backend.dispose?.();
  });
});
