import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kernelModule } from "../src/kernels.ts";
// The package's own build script (plain JavaScript, no type declarations).
// @ts-expect-error -- untyped .mjs
import * as build from "../scripts/build-wasm.mjs";

interface BuildScript {
  SOURCE_DIR: string;
  WASM_FILE: string;
  staleness(dir?: string): string | null;
  readRecord(): { sourceHash: string; wasmSha256: string; asc: string; sources: string[] } | null;
  sourceHash(version?: string, dir?: string): string;
  sourceFiles(dir?: string): string[];
  compile(outFile: string): Promise<Uint8Array>;
}
const b = build as BuildScript;

describe("the kernels' binary (src/wasm/nnspec.wasm)", () => {
  it("that the backend loads is current: its recorded hash matches assembly/, asc's version and the flags", async () => {
    await kernelModule(); // the Node loader's check: it rebuilds a stale binary before compiling it
    expect(b.staleness()).toBeNull();
    const record = b.readRecord()!;
    expect(record.sourceHash).toBe(b.sourceHash());
    expect(record.sources).toEqual(b.sourceFiles());
  });

  it("is exactly what asc makes from those sources (rebuilt in a temporary file, compared byte for byte)", async () => {
    await kernelModule();
    const out = join(tmpdir(), `nnspec-wasm-rebuild-${process.pid}.wasm`);
    try {
      const rebuilt = await b.compile(out);
      expect(Buffer.compare(Buffer.from(rebuilt), readFileSync(b.WASM_FILE))).toBe(0);
    } finally {
      rmSync(out, { force: true });
    }
  });

  it("counts as stale once any kernel source changes", async () => {
    await kernelModule();
    const dir = mkdtempSync(join(tmpdir(), "nnspec-wasm-sources-"));
    try {
      cpSync(b.SOURCE_DIR, dir, { recursive: true });
      expect(b.staleness(dir)).toBeNull();
      appendFileSync(join(dir, "conv.ts"), "\n// edited\n");
      expect(b.staleness(dir)).toMatch(/is stale/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
