import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "@nnspec/conformance";
import { expectOneLineError, nnspec } from "./helpers.ts";

/** Item 4 and 12 of issue 13: one set of exit codes, expected errors as one line, stacks only with NNSPEC_DEBUG=1. */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-faults-exit-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("usage mistakes exit 2 (commander's own errors included); help exits 0", () => {
  it("a missing argument", async () => {
    const r = await nnspec(["sheet", "audit"]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/missing required argument 'file'/);
  });
  it("an unknown option and an unknown command", async () => {
    const a = await nnspec(["train", "--bogus"]);
    expect(a.code).toBe(EXIT.usage);
    expect(a.stderr).toMatch(/unknown option '--bogus'/);
    const b = await nnspec(["trian"]);
    expect(b.code).toBe(EXIT.usage);
    expect(b.stderr).toMatch(/unknown command 'trian'/);
  });
  it("--help", async () => {
    const r = await nnspec(["train", "--help"]);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/--restart-momentum/);
  });
  it("train --batch 100000000: one line naming the option, no stack", async () => {
    const r = await nnspec(["train", "--batch", "100000000"]);
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(r, /option --batch: must be ≤ 60000/);
  });
  it("train --out naming a file: refused before anything runs, the file untouched", async () => {
    const file = join(dir, "a-file");
    await writeFile(file, "keep me\n");
    const r = await nnspec(["train", "--out", file, "--limit", "16", "--epochs", "1"]);
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(r, /--out .*a-file: exists and is not a folder/);
    expect(await readFile(file, "utf8")).toBe("keep me\n");
  });
});

describe("a backend whose createBackend throws", () => {
  it("is one line naming the backend; the stack only with NNSPEC_DEBUG=1", async () => {
    const boom = join(dir, "boom.mjs");
    await writeFile(boom, "export async function createBackend() { throw new Error('no device here'); }\n");
    const r = await nnspec(["train", "--backend", boom]);
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(r, /backend ".*boom\.mjs": createBackend\(\) failed: no device here/);
    const debug = await nnspec(["train", "--backend", boom], { NNSPEC_DEBUG: "1" });
    expect(debug.code).toBe(EXIT.usage);
    expect(debug.stderr).toMatch(/^\s+at .+boom\.mjs:\d+:\d+/m);
  });
  it("`throw undefined` is still one line", async () => {
    const undef = join(dir, "undef.mjs");
    await writeFile(undef, "export async function createBackend() { throw undefined; }\n");
    const r = await nnspec(["summary", "--backend", undef]);
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(r, /createBackend\(\) failed: undefined was thrown/);
  });
});

describe("an unexpected error is one line, exit 3 (the command could not finish)", () => {
  it("a model whose summary() throws a TypeError", async () => {
    const bad = join(dir, "bad-summary.mjs");
    await writeFile(
      bad,
      `export async function createBackend() {
  return {
    manifest: { name: "bad-summary", version: "0.0.0", precision: "float32", environment: "node", device: "none", capabilities: ["cnn.forward"] },
    cnn: { async create() { return { async summary() { return null.rows; }, async dispose() {} }; } },
  };
}\n`,
    );
    const r = await nnspec(["summary", "--backend", bad]);
    expect(r.code).toBe(EXIT.incomplete);
    expectOneLineError(r, /^error: TypeError: Cannot read properties of null/);
    expect(r.stderr).toMatch(/set NNSPEC_DEBUG=1 for the stack/);
  });
});
