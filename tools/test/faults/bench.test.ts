import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchResultsSchema, type BenchResults } from "@nnspec/spec";
import { EXIT } from "@nnspec/conformance";
import { entryOf } from "../../src/bench/run-bench.ts";
import { accuracyCell, settingsLine, statusCell } from "../../src/bench/format.ts";
import { NO_MNIST } from "../../src/bench/protocol.ts";
import { nnspec } from "./helpers.ts";

/** Item 13 of issue 13: a bench failure names its stage; a row without MNIST says so; --help tells the truth. */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-faults-bench-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("nnspec bench", () => {
  it("a backend that loads but cannot compute fails in 'checks' (not 'load'); without MNIST the row and header say so", async () => {
    const broken = join(dir, "broken-forward.mjs");
    await writeFile(
      broken,
      `export async function createBackend() {
  const model = {
    async summary() { return []; }, async forward() { throw new Error("forward: kernel missing"); }, async backward() { throw new Error("no forward"); },
    async gradients() { return {}; }, async step() {}, async parameters() { return {}; }, async buffers() { return {}; }, async dispose() {},
  };
  return {
    manifest: { name: "broken-forward", version: "0.0.0", precision: "float32", environment: "node", device: "none", capabilities: ["cnn.forward", "cnn.backward"] },
    cnn: { async create() { return model; } },
  };
}\n`,
    );
    const out = join(dir, "out");
    const r = await nnspec(["bench", "--quick", "--no-peer", "--backends", broken, "--timeout-s", "60", "--out", out], {
      MNIST_DIR: dir,
    });
    expect(r.code, r.stderr).toBe(EXIT.fault);
    expect(r.stdout).toMatch(/broken-forward +float32 +failed \(checks\)/);
    expect(r.stdout).toMatch(/broken-forward \(failed in checks: \d+ of \d+ checks failed/);
    expect(r.stdout).toMatch(/no MNIST data: broken-forward did not train/);
    const results: BenchResults = benchResultsSchema.parse(
      JSON.parse(await readFile(join(out, "results.json"), "utf8")),
    );
    const e = results.entries[0]!;
    expect(e.failure!.phase).toBe("conformance");
    expect(e.phases.find((p) => p.name === "load")).toMatchObject({ status: "ok" });
    expect(e.phases.find((p) => p.name === "load")!.detail).toMatch(/first result failed: forward: kernel missing/);
    expect(e.phases.find((p) => p.name === "train-speed")).toMatchObject({
      status: "failed",
      detail: "forward: kernel missing",
    });
    // The header does not claim a training budget nobody trained on.
    const md = await readFile(join(out, "scoreboard.md"), "utf8");
    expect(md).toMatch(/no MNIST training ran \(no MNIST data/);
    expect(md).not.toMatch(/epoch\(s\) on \d+ training images/);
  }, 90_000);

  it("an ok row that skipped training for lack of data says 'ok, no MNIST'", () => {
    const ok = entryOf({ id: "x", kind: "backend", specifier: "x", options: {} }, 0, {
      phases: [
        { name: "load", status: "ok", seconds: 0 },
        { name: "conformance", status: "ok", seconds: 0 },
        { name: "mnist-train", status: "skipped", seconds: 0, detail: NO_MNIST },
      ],
      patch: { speed: {} },
      notes: [],
      rssBytes: null,
      wallSeconds: 1,
      failure: null,
    });
    expect(statusCell(ok)).toBe("ok, no MNIST");
    expect(accuracyCell(ok)).toBe("— (no MNIST)");
    const settings = {
      mode: "default",
      epochs: 1,
      limit: 8192,
      testLimit: 1000,
      batchSize: 128,
      maxLr: 0.05,
      seed: 1,
      reps: 5,
      timeoutSeconds: 900,
    } as BenchResults["settings"];
    expect(settingsLine({ settings, entries: [ok] } as BenchResults)).toMatch(
      /^mode default: no MNIST training ran \(no MNIST data: set MNIST_DIR or --data-dir\)/,
    );
    const timedOut = entryOf({ id: "y", kind: "backend", specifier: "y", options: {} }, 0, {
      phases: [{ name: "load", status: "ok", seconds: 0 }],
      patch: { speed: {} },
      notes: [],
      rssBytes: null,
      wallSeconds: 1,
      failure: { phase: "train-speed", message: "no result within 4 s; killed", timedOut: true },
    });
    expect(statusCell(timedOut)).toBe("timed-out (speed)");
  });

  it("--help states the default budget the code uses", async () => {
    const r = await nnspec(["bench", "--help"]);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout.replace(/\s+/g, " ")).toMatch(/default 1 epoch on 8192 images, tested on 1000/);
    expect(r.stdout).not.toMatch(/2048/);
  });
});
