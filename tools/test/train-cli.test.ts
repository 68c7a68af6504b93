import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MNIST_FILES } from "../src/data/index.ts";
import { runRecordSchema } from "../src/train/index.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const realDir = [process.env.MNIST_DIR, resolve(repoRoot, "../shared/data/mnist")].find(
  (d) => d && existsSync(join(d, MNIST_FILES.trainImages.name)),
);
const bin = join(repoRoot, "tools/bin/nnspec.js");

/** Run the real CLI in a child process (tsx start-up included), capturing exit code and output. */
function nnspec(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: repoRoot, env: { ...process.env, NO_COLOR: "1", ...env }, timeout: 110_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        ok({ code, stdout, stderr });
      },
    );
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-train-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("nnspec train: argument errors name the option", () => {
  it("rejects non-integers, out-of-range values and bad precision, all at once", async () => {
    const r = await nnspec(["train", "--epochs", "abc", "--limit", "0", "--max-lr", "-1", "--precision", "float16"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/option --epochs: expected an integer ≥ 1 \(got "abc"\)/);
    expect(r.stderr).toMatch(/option --limit: must be ≥ 1 \(got "0"\)/);
    expect(r.stderr).toMatch(/option --max-lr: must be > 0 \(got "-1"\)/);
    expect(r.stderr).toMatch(/option --precision: .*float32.*float64/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // one clear message, no stack trace
  });
  it("a backend without the CNN is a clear error listing its capabilities", async () => {
    const fake = join(dir, "no-cnn.mjs");
    await writeFile(
      fake,
      `export async function createBackend() {
  return { manifest: { name: "fake", version: "0", precision: "float64", environment: "node", device: "none", capabilities: ["net222.forward"] } };
}\n`,
    );
    const r = await nnspec(["train", "--backend", fake]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/backend fake does not implement the CNN \(capabilities: net222\.forward\)/);
  });
  it("an unreadable --resume checkpoint names the file", async () => {
    const r = await nnspec(["train", "--resume", join(dir, "missing.json")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot read checkpoint .*missing\.json/);
  });
});

describe.runIf(realDir)("nnspec train end to end", () => {
  const backendArg = "reference";

  it("writes run.json, plots and a checkpoint; --resume refuses a changed recipe and a finished run", async () => {
    const out = join(dir, "run");
    const r = await nnspec([
      "train",
      "--backend",
      backendArg,
      "--data-dir",
      realDir!,
      "--limit",
      "64",
      "--batch",
      "32",
      "--epochs",
      "2",
      "--test-limit",
      "100",
      "--out",
      out,
      "--log-every",
      "1",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // Not a terminal: plain progress lines, one per batch here.
    expect(r.stdout.match(/^epoch 1\/2 batch \d\/2: loss [\d.]+, acc [\d.]+%, \d+ img\/s/gm)?.length).toBe(2);
    expect(r.stdout).toMatch(/^epoch 2: train loss [\d.]+ acc [\d.]+% \| test loss [\d.]+ acc [\d.]+%/m);
    const record = runRecordSchema.parse(JSON.parse(await readFile(join(out, "run.json"), "utf8")));
    expect(record.epochs.length).toBe(2);
    expect(record.batchLoss.length).toBe(4);
    expect(record.recipe).toMatchObject({
      batchSize: 32,
      epochs: 2,
      momentum: 0.9,
      schedule: { kind: "onecycle", maxLr: 0.05 },
    });
    expect(record.backend.precision).toBe("float32");
    expect(record.status).toBe("complete");
    // The checkpoint's .bin carries the step and its content hash in its name (one unit with its manifest).
    const files = (await readdir(out)).sort();
    expect(files.filter((f) => !/^checkpoint\.step4\.[0-9a-f]{12}\.bin$/.test(f))).toEqual([
      "accuracy.png",
      "accuracy.svg",
      "checkpoint.json",
      "loss.png",
      "loss.svg",
      "run.json",
    ]);
    expect(files).toHaveLength(7);

    const changed = await nnspec([
      "train",
      "--backend",
      backendArg,
      "--data-dir",
      realDir!,
      "--resume",
      join(out, "checkpoint.json"),
      "--epochs",
      "3",
    ]);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/--epochs 3 differs from the checkpoint's 2/);
    const finished = await nnspec([
      "train",
      "--backend",
      backendArg,
      "--data-dir",
      realDir!,
      "--resume",
      join(out, "checkpoint.json"),
      "--out",
      join(dir, "again"),
    ]);
    expect(finished.code).toBe(2);
    expect(finished.stderr).toMatch(/already completed all 2 epoch\(s\)/);
  });
});
