import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { createBackend, WasmBinaryNotFoundError } from "../src/index.ts";

// Its own file (own process): the wasm module can only be started once per process.
describe("tfjs-wasm binary location", () => {
  it("fails with an error naming the file it looked for when the wasm folder is wrong", async () => {
    const err = await createBackend({ wasmDir: "/nonexistent/wasm-dir" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WasmBinaryNotFoundError);
    expect((err as Error).message).toMatch(/\/nonexistent\/wasm-dir\/tfjs-backend-wasm(-threaded)?(-simd)?\.wasm/);
  });

  it("rejects unknown options", async () => {
    await expect(createBackend({ wasmdir: "x" })).rejects.toThrow(/unknown option\(s\) wasmdir/);
  });

  it("then starts from the installed package", async () => {
    const b = await createBackend();
    // Default: one XNNPACK thread per core (at most 8).
    const cores = Math.min(8, availableParallelism());
    expect(b.manifest.device).toMatch(new RegExp(`^tfjs 4\\.22\\.0 wasm .*SIMD (on|off), ${cores} threads?$`));
  });
});
