import { describe, expect, it } from "vitest";
import { createBackend, WasmBinaryNotFoundError } from "../src/index.ts";

// Its own file (own process): the wasm module can only be started once per process.
describe("tfjs-wasm binary location", () => {
  it("fails with an error naming the file it looked for when the wasm folder is wrong", async () => {
    const err = await createBackend({ wasmDir: "/nonexistent/wasm-dir" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WasmBinaryNotFoundError);
    expect((err as Error).message).toMatch(/\/nonexistent\/wasm-dir\/tfjs-backend-wasm(-simd)?\.wasm/);
  });

  it("rejects unknown options", async () => {
    await expect(createBackend({ wasmdir: "x" })).rejects.toThrow(/unknown option\(s\) wasmdir/);
  });

  it("then starts from the installed package", async () => {
    const b = await createBackend();
    expect(b.manifest.device).toMatch(/^tfjs 4\.22\.0 wasm .*SIMD (on|off), \d+ threads?$/);
  });
});
