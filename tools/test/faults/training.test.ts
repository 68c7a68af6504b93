import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "@nnspec/conformance";
import { loadCheckpoint, runRecordSchema, type RunRecord } from "../../src/train/index.ts";
import { expectOneLineError, mnistDir, nnspec, referenceUrl, resumeArgs, snapshot, start, tiny } from "./helpers.ts";

/** Items 5, 6 and 8 of issue 13: divergence, SIGINT/SIGTERM, exact resume and what a resume may change. */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-faults-train-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const record = async (out: string): Promise<RunRecord> =>
  runRecordSchema.parse(JSON.parse(await readFile(join(out, "run.json"), "utf8")));

describe.runIf(mnistDir)("training divergence stops at once, truthfully", () => {
  it("--max-lr 1e30: exit 1 naming epoch, batch and the first non-finite value; run.json says so; no checkpoint of it", async () => {
    const out = join(dir, "diverge");
    const r = await nnspec(tiny(out, ["--epochs", "2", "--max-lr", "1e30"]));
    expect(r.code, r.stderr).toBe(EXIT.fault);
    expectOneLineError(
      r,
      /^error: training diverged at epoch 1, batch \d+, step \d+: .*first non-finite:? (gradient|parameter|buffer) [\w.]+\[\d+\] = (NaN|-?Infinity)/,
    );
    const rec = await record(out);
    expect(rec.status).toBe("diverged");
    expect(rec.stop).toMatchObject({ reason: "diverged", epoch: 1 });
    expect(rec.stop!.batch).toBeGreaterThanOrEqual(1);
    expect(rec.batchLoss.length).toBe(rec.stop!.step);
    // It diverged inside the first epoch: no checkpoint exists, so none can hold a non-finite value.
    expect(rec.checkpoint).toBeNull();
    expect((await readdir(out)).filter((f) => f.startsWith("checkpoint"))).toEqual([]);
    expect(r.stderr).toMatch(/no checkpoint was written/);
  });

  it("a backend that blows up at step 6: the epoch-1 checkpoint is kept and resumes to the end", async () => {
    // The reference backend, except that its 7th SGD step (step index 6, epoch 2) gets lr = Infinity when asked to.
    const blowup = join(dir, "blowup.mjs");
    await writeFile(
      blowup,
      `import { createBackend as reference } from ${JSON.stringify(referenceUrl)};
export async function createBackend(options) {
  const b = await reference(options);
  const at = Number(process.env.BLOWUP_AT_STEP ?? -1);
  let steps = 0;
  return { ...b, manifest: { ...b.manifest, name: "blowup" }, cnn: { async create(init) {
    const m = await b.cnn.create(init);
    const step = (sgd) => m.step(steps++ === at ? { ...sgd, lr: Infinity } : sgd);
    return new Proxy(m, { get: (t, k) => (k === "step" ? step : typeof t[k] === "function" ? t[k].bind(t) : t[k]) });
  } } };
}
`,
    );
    const out = join(dir, "blowup");
    const r = await nnspec(tiny(out, ["--epochs", "3", "--backend", blowup]), { BLOWUP_AT_STEP: "6" });
    expect(r.code, r.stderr).toBe(EXIT.fault);
    expectOneLineError(
      r,
      /training diverged at epoch 2, batch 3, step 6: after the SGD step \(lr [\d.e+-]+\), first non-finite parameter [\w.]+\[\d+\] = (NaN|-?Infinity)/,
    );
    expect(r.stderr).toMatch(/the last good checkpoint is kept: .*checkpoint\.json \(1 epoch\(s\), step 4\)/);
    const rec = await record(out);
    expect(rec).toMatchObject({
      status: "diverged",
      stop: { epoch: 2, batch: 3, step: 6 },
      checkpoint: { epochsCompleted: 1, globalStep: 4 },
    });
    expect(rec.epochs).toHaveLength(1);
    const ck = await loadCheckpoint(join(out, "checkpoint.json")); // every value finite, or it would not load
    expect(ck.training.epochsCompleted).toBe(1);
    const before = await snapshot(out);
    // Resumable: without the fault the same backend finishes the run from the kept checkpoint.
    const resumed = await nnspec(["train", "--resume", join(out, "checkpoint.json"), "--data-dir", mnistDir!]);
    expect(resumed.code, resumed.stderr).toBe(EXIT.ok);
    const done = await record(out);
    expect(done.status).toBe("complete");
    expect(done.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(done.batchLoss.slice(0, 4)).toEqual(rec.batchLoss.slice(0, 4));
    expect(Object.keys(before)).toContain("run.json"); // the diverged record was replaced by the resumed run's, as asked
  });
});

describe.runIf(mnistDir)(
  "SIGINT and SIGTERM: finish the batch, save, write run.json, print the resume command, exit 3",
  () => {
    let straight: RunRecord;
    beforeAll(async () => {
      const out = join(dir, "straight");
      const r = await nnspec(tiny(out, ["--epochs", "2", "--limit", "128"]));
      expect(r.code, r.stderr).toBe(EXIT.ok);
      straight = await record(out);
    }, 60_000);

    it("SIGINT mid-run, then the printed command resumes it to exactly the uninterrupted run", async () => {
      const out = join(dir, "interrupted");
      const run = start(tiny(out, ["--epochs", "2", "--limit", "128"]));
      await run.waitFor(/^epoch 1\/2 batch 1\/8:/m);
      run.child.kill("SIGINT");
      const r = await run.done;
      expect(r.code, r.stderr).toBe(EXIT.incomplete);
      expect(r.stderr).toMatch(/SIGINT: stopping after the current batch/);
      expect(r.stderr).toMatch(
        /interrupted by SIGINT at epoch \d, (batch \d+|\(evaluation \/ end of epoch\)), step \d+/,
      );
      const rec = await record(out);
      expect(rec.status).toBe("interrupted");
      expect(rec.stop!.reason).toBe("interrupted");
      expect(rec.batchLoss).toEqual(straight.batchLoss.slice(0, rec.stop!.step));
      expect(rec.checkpoint).toMatchObject({ globalStep: rec.stop!.step });
      if (rec.batchLoss.length > 0) expect(existsSync(join(out, "loss.png"))).toBe(true);
      const args = resumeArgs(r.stderr);
      expect(args).toEqual([
        "train",
        "--resume",
        join(out, "checkpoint.json"),
        "--out",
        out,
        "--data-dir",
        resolve(mnistDir!),
      ]); // the command names the folder as an absolute, normalised path
      const resumed = await nnspec(args);
      expect(resumed.code, resumed.stderr).toBe(EXIT.ok);
      const done = await record(out);
      expect(done.status).toBe("complete");
      // Parameters, BN buffers, SGD momentum, data order and dropout masks all carried over: the same run, to the bit.
      expect(done.batchLoss).toEqual(straight.batchLoss);
      expect(done.epochs.map((e) => e.testAccuracy)).toEqual(straight.epochs.map((e) => e.testAccuracy));
      expect(done.segments.map((s) => s.momentum)).toEqual(["fresh", "restored"]);
    });

    it("SIGTERM does the same", async () => {
      const out = join(dir, "terminated");
      const run = start(tiny(out, ["--epochs", "2", "--limit", "128"]));
      await run.waitFor(/^epoch 1\/2 batch 1\/8:/m);
      run.child.kill("SIGTERM");
      const r = await run.done;
      expect(r.code, r.stderr).toBe(EXIT.incomplete);
      expect((await record(out)).status).toBe("interrupted");
      expect(resumeArgs(r.stderr)[2]).toBe(join(out, "checkpoint.json"));
    });
  },
);

describe.runIf(mnistDir)("a resume keeps the run's settings and backend, or refuses by name", () => {
  let ck: string;
  beforeAll(async () => {
    // An unfinished run to resume: stopped by SIGINT once its first checkpoint is saved.
    const three = join(dir, "three");
    const s = start(tiny(three, ["--epochs", "3", "--limit", "32"]));
    await s.waitFor(/checkpoint saved/);
    s.child.kill("SIGINT");
    expect((await s.done).code).toBe(EXIT.incomplete);
    ck = join(three, "checkpoint.json");
  }, 60_000);

  it("a conflicting --test-limit or --eval-batch is refused by name", async () => {
    const before = await snapshot(join(dir, "three"));
    const r = await nnspec([
      "train",
      "--resume",
      ck,
      "--data-dir",
      mnistDir!,
      "--test-limit",
      "60",
      "--eval-batch",
      "10",
    ]);
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(
      r,
      /--test-limit 60 differs from the checkpoint's 50; --eval-batch 10 differs from the checkpoint's 50/,
    );
    expect(await snapshot(join(dir, "three"))).toEqual(before);
  });
  it("another backend or precision needs --allow-backend-switch; then every epoch names its backend", async () => {
    const refused = await nnspec(["train", "--resume", ck, "--data-dir", mnistDir!, "--precision", "float64"]);
    expect(refused.code).toBe(EXIT.usage);
    expectOneLineError(
      refused,
      /trained by reference \(float32\), not reference \(float64\); pass --allow-backend-switch/,
    );
    const out = join(dir, "switched");
    const ok = await nnspec([
      "train",
      "--resume",
      ck,
      "--data-dir",
      mnistDir!,
      "--precision",
      "float64",
      "--allow-backend-switch",
      "--out",
      out,
    ]);
    expect(ok.code, ok.stderr).toBe(EXIT.ok);
    const rec = await record(out);
    const done = rec.segments[0]!.toStep;
    expect(rec.segments.map((s) => s.precision)).toEqual(["float32", "float64"]);
    expect(rec.epochs[0]!.trainedBy).toEqual(["reference 0.1.0 (float32)"]);
    expect(rec.epochs.at(-1)!.trainedBy).toEqual(["reference 0.1.0 (float64)"]);
    expect(done).toBeGreaterThan(0);
  });
  it("a checkpoint without momentum needs --restart-momentum (named), and the record says momentum restarted", async () => {
    const m = JSON.parse(await readFile(ck, "utf8")) as Record<string, unknown>;
    const noMomentum = join(dir, "three", "no-momentum.json");
    await writeFile(noMomentum, JSON.stringify({ ...m, momentum: null }));
    const r = await nnspec(["train", "--resume", noMomentum, "--data-dir", mnistDir!, "--out", join(dir, "restart")]);
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(r, /holds no SGD momentum .*pass --restart-momentum/);
    const ok = await nnspec([
      "train",
      "--resume",
      noMomentum,
      "--data-dir",
      mnistDir!,
      "--out",
      join(dir, "restart"),
      "--restart-momentum",
    ]);
    expect(ok.code, ok.stderr).toBe(EXIT.ok);
    expect((await record(join(dir, "restart"))).segments.at(-1)!.momentum).toBe("restarted");
  });
});
