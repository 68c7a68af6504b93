import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CNN_BUFFERS,
  CNN_PARAMS,
  initBuffers,
  initParameters,
  recipeSchema,
  SpecValidationError,
  type Backend,
  type CnnForwardOptions,
  type FloatArray,
} from "@nnspec/spec";
import { loadWorkspaceBackend as loadBackend } from "../src/workspace-backends.ts";
import { loadMnist, MNIST_FILES, type MnistData } from "../src/data/index.ts";
import {
  CheckpointError,
  epochOrder,
  loadCheckpoint,
  runRecordSchema,
  saveCheckpoint,
  trainCnn,
  trainingSubset,
  writeTrainPlots,
  type CheckpointTraining,
} from "../src/train/index.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const realDir = [process.env.MNIST_DIR, resolve(repoRoot, "../shared/data/mnist")].find(
  (d) => d && existsSync(join(d, MNIST_FILES.trainImages.name)),
);

async function referenceFloat32(): Promise<Backend> {
  const backend = await loadBackend("reference", { precision: "float32" });
  if (!backend.cnn) throw new Error("the reference backend does not export its CNN");
  return backend;
}

const f32 = (m: Record<string, ArrayLike<number>>) =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Float32Array.from(v)]));

const training: CheckpointTraining = {
  backend: "reference",
  precision: "float32",
  backendSpecifier: "reference",
  backendOptions: { precision: "float32" },
  recipe: {
    batchSize: 128,
    epochs: 15,
    momentum: 0.9,
    weightDecay: 0,
    schedule: {
      kind: "onecycle",
      maxLr: 0.05,
      pctStart: 0.3,
      divFactor: 25,
      finalDivFactor: 1e4,
      cycleMomentum: true,
      baseMomentum: 0.85,
      maxMomentum: 0.95,
    },
  },
  seed: 3,
  limit: null,
  testLimit: 500,
  evalBatchSize: 1000,
  epochsCompleted: 2,
  globalStep: 938,
  partialEpoch: null,
  history: [],
  batchLoss: [2.3, 1.1],
  segments: [
    {
      backend: "reference",
      version: "0.1.0",
      precision: "float32",
      fromStep: 0,
      toStep: 938,
      momentum: "fresh",
      resumedFrom: null,
    },
  ],
};
const binOf = async (manifestPath: string) =>
  join(dirname(manifestPath), (JSON.parse(await readFile(manifestPath, "utf8")) as { binFile: string }).binFile);

describe("data order", () => {
  it("--limit takes a seed-shuffled subset; each epoch reshuffles it differently, reproducibly", () => {
    const a = trainingSubset(60000, 1, 2000);
    expect(a.length).toBe(2000);
    expect(new Set(a).size).toBe(2000);
    expect([...a]).toEqual([...trainingSubset(60000, 1, 2000)]);
    expect([...a.subarray(0, 20)]).not.toEqual([...trainingSubset(60000, 2, 2000).subarray(0, 20)]);
    const e0 = epochOrder(2000, 1, 0),
      e1 = epochOrder(2000, 1, 1);
    expect([...e0].sort((x, y) => x - y)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect([...e0.subarray(0, 20)]).not.toEqual([...e1.subarray(0, 20)]);
    expect(() => trainingSubset(100, 1, 101)).toThrow(/--limit 101 exceeds the 100 training images/);
  });
});

describe("checkpoint", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nnspec-ckpt-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("round-trips every parameter, buffer and momentum in CNN_PARAMS/CNN_BUFFERS order, leaving no temp files", async () => {
    const params = f32(initParameters(7));
    const buffers = f32(initBuffers());
    const momentum = f32(initParameters(8));
    buffers["bn4.running_mean"]![3] = 0.25;
    buffers["bn4.num_batches_tracked"]![0] = 938;
    const path = join(dir, "ck.json");
    const binPath = await saveCheckpoint(path, { parameters: params, buffers, momentum }, training);
    // The .bin's name is unique per save (step + content hash), so a manifest and its .bin are one unit.
    expect((await readdir(dir)).sort()).toEqual(["ck.json", basename(binPath)]);
    expect(basename(binPath)).toMatch(/^ck\.step938\.[0-9a-f]{12}\.bin$/);
    const back = await loadCheckpoint(path);
    expect(Object.keys(back.parameters)).toEqual(CNN_PARAMS.map((p) => p.name));
    expect(Object.keys(back.buffers)).toEqual(CNN_BUFFERS.map((b) => b.name));
    for (const p of CNN_PARAMS) expect(back.parameters[p.name]).toEqual(params[p.name]);
    for (const b of CNN_BUFFERS) expect(back.buffers[b.name]).toEqual(buffers[b.name]);
    for (const p of CNN_PARAMS) expect(back.momentum![p.name]).toEqual(momentum[p.name]);
    expect(back.training).toEqual(training);
    // The documented layout: conv1.weight is the first tensor at byte 0; bytes = 4 × total elements.
    const manifest = JSON.parse(await readFile(path, "utf8")) as {
      binBytes: number;
      binSha256: string;
      parameters: { name: string; offset: number }[];
    };
    expect(manifest.parameters[0]).toMatchObject({ name: "conv1.weight", offset: 0 });
    const elements = [...CNN_PARAMS, ...CNN_BUFFERS, ...CNN_PARAMS].reduce((a, t) => a + t.size, 0);
    expect(manifest.binBytes).toBe(4 * elements);
    const bin = await readFile(binPath);
    expect(bin.readFloatLE(0)).toBe(params["conv1.weight"]![0]);
    expect(createHash("sha256").update(bin).digest("hex")).toBe(manifest.binSha256);
    // The next save supersedes this one: its .bin goes once the new manifest is in place.
    const next = await saveCheckpoint(
      path,
      { parameters: params, buffers, momentum: null },
      { ...training, globalStep: 1000 },
    );
    expect((await readdir(dir)).sort()).toEqual(["ck.json", basename(next)]);
    expect((await loadCheckpoint(path)).momentum).toBeNull();
    await rm(path);
    await rm(next);
  });

  it("refuses to save a non-finite value, before touching any file", async () => {
    const params = f32(initParameters(1));
    params["bn3.weight"]![2] = Number.NaN;
    const path = join(dir, "nan.json");
    await expect(
      saveCheckpoint(path, { parameters: params, buffers: f32(initBuffers()), momentum: null }, training),
    ).rejects.toThrow(/refusing to save checkpoint .*nan\.json: parameter bn3\.weight\[2\] = NaN/);
    expect((await readdir(dir)).filter((f) => f.startsWith("nan"))).toEqual([]);
  });

  it("errors name the file and the tensor or field that is wrong", async () => {
    const path = join(dir, "bad.json");
    await saveCheckpoint(
      path,
      { parameters: f32(initParameters(1)), buffers: f32(initBuffers()), momentum: null },
      training,
    );
    const good = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown> & {
      binSha256: string;
      parameters: { name: string; shape: number[] }[];
    };
    const binPath = await binOf(path);
    const bin = await readFile(binPath);

    const wrongShape = structuredClone(good);
    wrongShape.parameters.find((p) => p.name === "conv3.weight")!.shape = [16, 16, 3, 2];
    await writeFile(path, JSON.stringify(wrongShape));
    await expect(loadCheckpoint(path)).rejects.toThrow(
      /bad\.json: parameter "conv3\.weight" has shape \[16, 16, 3, 2\], expected \[16, 16, 3, 3\]/,
    );

    const missing = structuredClone(good);
    missing.parameters = missing.parameters.filter((p) => p.name !== "fc.bias");
    await writeFile(path, JSON.stringify(missing));
    await expect(loadCheckpoint(path)).rejects.toThrow(/parameter "fc\.bias" is missing/);

    const badField = { ...structuredClone(good), dtype: "float16" };
    await writeFile(path, JSON.stringify(badField));
    const err = await loadCheckpoint(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecValidationError);
    expect((err as Error).message).toMatch(/^\S*bad\.json: field "dtype"/);

    await writeFile(path, JSON.stringify(good));
    await writeFile(binPath, bin.subarray(0, bin.length - 8));
    await expect(loadCheckpoint(path)).rejects.toThrow(
      new RegExp(
        `${basename(binPath).replace(/\./g, "\\.")}: ${bin.length - 8} bytes, the manifest says ${bin.length}`,
      ),
    );

    // A NaN (with a matching hash, as a broken writer would leave it) is still refused, naming the tensor.
    const nan = Buffer.from(bin);
    nan.writeFloatLE(Number.NaN, 4 * 5);
    await writeFile(binPath, nan);
    await writeFile(path, JSON.stringify({ ...good, binSha256: createHash("sha256").update(nan).digest("hex") }));
    await expect(loadCheckpoint(path)).rejects.toThrow(/parameter "conv1\.weight" element 5 is NaN/);

    await expect(loadCheckpoint(join(dir, "nope.json"))).rejects.toThrow(CheckpointError);
  });
});

describe.runIf(realDir)("training the reference CNN on MNIST", () => {
  let data: MnistData;
  let backend: Backend;
  let dir: string;
  beforeAll(async () => {
    data = await loadMnist({ dataDir: realDir! });
    backend = await referenceFloat32();
    dir = await mkdtemp(join(tmpdir(), "nnspec-train-"));
  });
  afterAll(async () => {
    await backend?.dispose?.();
    await rm(dir, { recursive: true, force: true });
  });

  it("learns: loss falls and test accuracy is well above chance after 2000 images", async () => {
    // Batch 16 gives the OneCycle schedule 125 steps on 2000 images: enough to learn, quick enough for CI.
    const batches: number[] = [];
    const r = await trainCnn(
      { backend, data, epochs: 1, batchSize: 16, maxLr: 0.05, seed: 1, limit: 2000, testLimit: 500 },
      { onBatch: (p) => batches.push(p.loss) },
    );
    runRecordSchema.parse(r);
    expect(r.batchLoss).toEqual(batches);
    expect(r.batchLoss.length).toBe(125);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(r.batchLoss.slice(0, 20)),
      last = mean(r.batchLoss.slice(-20));
    console.log(
      `quick train: first-20 loss ${first.toFixed(3)} → last-20 ${last.toFixed(3)}, test acc ${(100 * r.epochs[0]!.testAccuracy).toFixed(1)}%, ${r.imagesPerSecond.toFixed(0)} img/s`,
    );
    expect(last).toBeLessThan(first - 0.3);
    expect(r.epochs[0]!.testAccuracy).toBeGreaterThan(0.5);
    expect(r.epochs[0]!.testLoss).toBeLessThan(Math.log(10));
    const files = await writeTrainPlots(dir, r);
    for (const f of files) expect(existsSync(f)).toBe(true);
    expect((await readFile(files[0]!)).subarray(1, 4).toString()).toBe("PNG");
  });

  it("sends the recipe's dropout rates with every training forward, and none when the recipe has none", async () => {
    // A proxy model records what the loop asks of the backend (the backend's use of rates is conformance's check).
    const seen: CnnForwardOptions[] = [];
    const cnn = backend.cnn!;
    const spy: Backend = {
      ...backend,
      cnn: {
        create: async (init) => {
          const m = await cnn.create(init);
          return new Proxy(m, {
            get: (t, k, r) =>
              k === "forward"
                ? (x: FloatArray, n: number, opts: CnnForwardOptions) => {
                    seen.push(opts);
                    return t.forward(x, n, opts);
                  }
                : Reflect.get(t, k, r),
          });
        },
      },
    };
    const base = { backend: spy, data, epochs: 1, batchSize: 32, maxLr: 0.05, seed: 3, limit: 64, testLimit: 32 };
    const rates = [0.1, 0.05, 0];
    const r = await trainCnn({ ...base, recipe: recipeSchema.parse({ batchSize: 32, epochs: 1, dropout: rates }) });
    expect(r.recipe.dropout).toEqual(rates);
    const train = seen.filter((o) => o.mode === "train");
    expect(train.map((o) => o.dropout)).toEqual([
      { seed: 3, step: 0, rates },
      { seed: 3, step: 1, rates },
    ]);
    seen.length = 0;
    await trainCnn(base);
    expect(seen.filter((o) => o.mode === "train").map((o) => o.dropout)).toEqual([
      { seed: 3, step: 0 },
      { seed: 3, step: 1 },
    ]);
  });

  it("is reproducible from the seed, and --resume continues exactly where the checkpoint stopped (momentum included)", async () => {
    const base = { backend, data, batchSize: 32, maxLr: 0.05, seed: 5, limit: 64, testLimit: 100 } as const;
    const straight = await trainCnn({ ...base, epochs: 2 });
    const again = await trainCnn({ ...base, epochs: 2 });
    expect(again.batchLoss).toEqual(straight.batchLoss);
    expect(again.epochs.map((e) => e.testAccuracy)).toEqual(straight.epochs.map((e) => e.testAccuracy));
    const ck = join(dir, "resume.json");
    // A checkpoint after epoch 1 of the same 2-epoch schedule, then resume it.
    let saved = false;
    await trainCnn(
      { ...base, epochs: 2, checkpointPath: ck },
      {
        onCheckpoint: () => {
          if (!saved) {
            saved = true;
            throw new StopAfterCheckpoint();
          }
        },
      },
    ).catch((e: unknown) => {
      if (!(e instanceof StopAfterCheckpoint)) throw e;
    });
    const checkpoint = await loadCheckpoint(ck);
    expect(checkpoint.training).toMatchObject({
      epochsCompleted: 1,
      globalStep: 2,
      seed: 5,
      limit: 64,
      testLimit: 100,
    });
    expect(checkpoint.momentum).not.toBeNull();
    const resumed = await trainCnn({ ...base, epochs: 2, resume: { path: ck, checkpoint } });
    expect(resumed.status).toBe("complete");
    expect(resumed.epochs.map((e) => e.epoch)).toEqual([1, 2]);
    expect(resumed.resumedFrom).toBe(ck);
    // Parameters, buffers, batch, dropout mask and SGD momentum are those of the uninterrupted run: identical losses.
    expect(resumed.batchLoss).toEqual(straight.batchLoss);
    expect(resumed.epochs.map((e) => e.testAccuracy)).toEqual(straight.epochs.map((e) => e.testAccuracy));
    expect(resumed.segments.map((s) => s.momentum)).toEqual(["fresh", "restored"]);
  });

  it("stops at the first non-finite value: status diverged, where, and no checkpoint of it", async () => {
    const ck = join(dir, "diverge.json");
    const r = await trainCnn({
      backend,
      data,
      epochs: 2,
      batchSize: 16,
      maxLr: 1e30,
      seed: 1,
      limit: 64,
      testLimit: 50,
      checkpointPath: ck,
    });
    expect(r.status).toBe("diverged");
    expect(r.stop).toMatchObject({ reason: "diverged", epoch: 1 });
    expect(r.stop!.detail).toMatch(/non-finite|loss is/);
    expect(existsSync(ck)).toBe(false);
    expect(r.checkpoint).toBeNull();
    runRecordSchema.parse(r);
  });
});

class StopAfterCheckpoint extends Error {}
