import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  RECIPES,
  augmentationSchema,
  mulberry32,
  recipeName,
  recipeSchema,
  type Backend,
  type CnnModel,
} from "@nnspec/spec";
import { loadWorkspaceBackend } from "../src/workspace-backends.ts";
import {
  augmentParams,
  IDENTITY_PARAMS,
  normalizedBatch,
  trainingBatch,
  warpImage,
  type MnistData,
  type MnistSplit,
} from "../src/data/index.ts";
import { augmentPreview as preview } from "../src/data/augment-preview.ts";
import { pngSize } from "../src/plot/image-size.ts";
import { trainCnn } from "../src/train/train-cnn.ts";
import { applyOverrides } from "../src/train/recipe-options.ts";

/** A synthetic split: random bytes as images (every pixel matters to a warp test), labels 0..9. */
function syntheticSplit(count: number, seed: number): MnistSplit {
  const rand = mulberry32(seed);
  const images = Uint8Array.from({ length: count * 784 }, () => Math.floor(rand() * 256));
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  return { count, rows: 28, cols: 28, images, labels };
}

const pattern = syntheticSplit(1, 42).images;
const at = (img: ArrayLike<number>, x: number, y: number) =>
  x >= 0 && x < 28 && y >= 0 && y < 28 ? img[y * 28 + x]! : 0;
const warp = (p: Partial<typeof IDENTITY_PARAMS>) =>
  warpImage(pattern, { ...IDENTITY_PARAMS, ...p }, new Float64Array(784));
const affine = augmentationSchema.parse({ kind: "affine", maxDegrees: 7, maxShift: 2, maxScale: 0.1 });

describe("augmentation: the warp", () => {
  it("is exact at the identity (bilinear weights 1 and 0), and an all-zero affine batch is byte-identical to normalizedBatch", () => {
    expect([...warp({})]).toEqual([...pattern]);
    const split = syntheticSplit(20, 1);
    const idx = [3, 0, 19, 7];
    const zero = augmentationSchema.parse({ kind: "affine", maxDegrees: 0, maxShift: 0, maxScale: 0 });
    const a = trainingBatch(split, idx, { augmentation: zero, seed: 5, epoch: 2 });
    const b = normalizedBatch(split, idx);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });

  it("rotates by +90° counter-clockwise on screen (numpy rot90), by −90° and by 180°", () => {
    const ccw = warp({ degrees: 90 }),
      cw = warp({ degrees: -90 }),
      half = warp({ degrees: 180 });
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        // rot90(A)[y][x] = A[x][27 − y]: what was right of the centre is now above it.
        expect(ccw[y * 28 + x]).toBeCloseTo(at(pattern, 27 - y, x), 9);
        expect(cw[y * 28 + x]).toBeCloseTo(at(pattern, y, 27 - x), 9);
        expect(half[y * 28 + x]).toBeCloseTo(at(pattern, 27 - x, 27 - y), 9);
      }
    }
  });

  it("translates by whole pixels exactly (black comes in at the edge) and by half a pixel as the mean of two", () => {
    const right = warp({ dx: 1 }),
      down = warp({ dy: 1 }),
      halfRight = warp({ dx: 0.5 }),
      both = warp({ dx: -2, dy: 3 });
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        expect(right[y * 28 + x]).toBe(at(pattern, x - 1, y));
        expect(down[y * 28 + x]).toBe(at(pattern, x, y - 1));
        expect(both[y * 28 + x]).toBe(at(pattern, x + 2, y - 3));
        expect(halfRight[y * 28 + x]).toBe((at(pattern, x - 1, y) + at(pattern, x, y)) / 2);
      }
    }
  });

  it("scales about the centre: ×2 reads the pixel halfway to the centre", () => {
    const big = warp({ scale: 2 });
    // Output (17, 17) reads input (13.5 + 3.5/2, 13.5 + 3.5/2) = (15.25, 15.25): weights 0.75/0.25 each way.
    expect(big[(13 + 4) * 28 + (13 + 4)]).toBeCloseTo(
      at(pattern, 15, 15) * 0.5625 +
        at(pattern, 16, 15) * 0.1875 +
        at(pattern, 15, 16) * 0.1875 +
        at(pattern, 16, 16) * 0.0625,
      9,
    );
  });
});

describe("augmentation: seeded draws", () => {
  it("draws every parameter within its range, centred on 0, from (seed, epoch, image) only", () => {
    const ps = Array.from({ length: 4000 }, (_, i) => augmentParams(affine, 1, 0, i));
    for (const p of ps) {
      expect(Math.abs(p.degrees)).toBeLessThanOrEqual(7);
      expect(Math.abs(p.dx)).toBeLessThanOrEqual(2);
      expect(Math.abs(p.dy)).toBeLessThanOrEqual(2);
      expect(Math.abs(p.scale - 1)).toBeLessThanOrEqual(0.1);
    }
    const meanOf = (f: (p: (typeof ps)[number]) => number) => ps.reduce((a, p) => a + f(p), 0) / ps.length;
    expect(Math.abs(meanOf((p) => p.degrees))).toBeLessThan(0.3);
    expect(meanOf((p) => p.degrees ** 2)).toBeCloseTo(49 / 3, 0); // uniform on [−7, 7]: variance 49/3
    expect(augmentParams(affine, 1, 0, 17)).toEqual(augmentParams(affine, 1, 0, 17));
    expect(augmentParams(affine, 1, 1, 17)).not.toEqual(augmentParams(affine, 1, 0, 17));
    expect(augmentParams(affine, 2, 0, 17)).not.toEqual(augmentParams(affine, 1, 0, 17));
    const rot = augmentParams(augmentationSchema.parse({ kind: "rotate", maxDegrees: 7 }), 1, 0, 17);
    expect({ dx: rot.dx, dy: rot.dy, scale: rot.scale }).toEqual({ dx: 0, dy: 0, scale: 1 });
    expect(augmentParams({ kind: "none" }, 1, 0, 17)).toEqual(IDENTITY_PARAMS);
  });

  it("same seed and epoch → byte-identical batches, whatever the batch composition; another epoch or seed → different", () => {
    const split = syntheticSplit(64, 2);
    const a = trainingBatch(split, [5, 9, 33], { augmentation: affine, seed: 3, epoch: 1 });
    const b = trainingBatch(split, [5, 9, 33], { augmentation: affine, seed: 3, epoch: 1 });
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    // Image 9 alone gives the same bytes as image 9 inside the batch.
    const alone = trainingBatch(split, [9], { augmentation: affine, seed: 3, epoch: 1 });
    expect(Buffer.from(alone.buffer).equals(Buffer.from(a.buffer, 784 * 4, 784 * 4))).toBe(true);
    const e2 = trainingBatch(split, [5, 9, 33], { augmentation: affine, seed: 3, epoch: 2 });
    const s4 = trainingBatch(split, [5, 9, 33], { augmentation: affine, seed: 4, epoch: 1 });
    expect(Buffer.from(e2.buffer).equals(Buffer.from(a.buffer))).toBe(false);
    expect(Buffer.from(s4.buffer).equals(Buffer.from(a.buffer))).toBe(false);
  });
});

const hasTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"], { stdio: "ignore" }).status === 0;

/** A backend whose models record the SHA-256 of every training batch they are given, then defer to `inner`. */
function recording(inner: Backend, log: string[]): Backend {
  return {
    ...inner,
    manifest: inner.manifest,
    cnn: {
      async create(init) {
        const m = await inner.cnn!.create(init);
        const wrapped: CnnModel = Object.create(m) as CnnModel;
        wrapped.forward = (x, n, o) => {
          if (o.mode === "train")
            log.push(
              createHash("sha256")
                .update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength))
                .digest("hex"),
            );
          return m.forward(x, n, o);
        };
        for (const k of [
          "summary",
          "backward",
          "gradients",
          "step",
          "parameters",
          "buffers",
          "optimizerState",
          "setOptimizerState",
          "dispose",
        ] as const) {
          const f = m[k] as ((...a: unknown[]) => unknown) | undefined;
          if (f) (wrapped as unknown as Record<string, unknown>)[k] = f.bind(m);
        }
        return wrapped;
      },
    },
  };
}

describe("augmentation in training: every backend gets the same batches", () => {
  it(`reference float64, reference float32${hasTorch ? " and the PyTorch peer" : ""} see byte-identical training batches`, async () => {
    const data: MnistData = { dir: "(synthetic)", train: syntheticSplit(96, 7), test: syntheticSplit(20, 8) };
    const recipe = recipeSchema.parse({
      name: "test-affine",
      batchSize: 32,
      epochs: 2,
      augmentation: { kind: "affine", maxDegrees: 7, maxShift: 2 },
    });
    const specs: [string, Record<string, unknown>][] = [
      ["reference", { precision: "float64" }],
      ["reference", { precision: "float32" }],
      ...(hasTorch ? [["pytorch", {}] as [string, Record<string, unknown>]] : []),
    ];
    const logs: string[][] = [];
    for (const [name, options] of specs) {
      const backend = await loadWorkspaceBackend(name, options);
      const log: string[] = [];
      try {
        const record = await trainCnn({
          backend: recording(backend, log),
          data,
          epochs: 1,
          batchSize: 1,
          maxLr: 1,
          seed: 11,
          recipe,
          testLimit: 20,
          evalBatchSize: 20,
        });
        expect(record.recipe).toEqual(recipe);
        expect(record.epochs).toHaveLength(2);
      } finally {
        await backend.dispose?.();
      }
      logs.push(log);
    }
    expect(logs[0]).toHaveLength(6); // 2 epochs × 3 batches
    for (const log of logs.slice(1)) expect(log).toEqual(logs[0]);
    expect(new Set(logs[0]).size).toBe(6);
  });
});

describe("recipes as data", () => {
  it("named recipes parse, name themselves, and records without a name or augmentation still parse", () => {
    expect(recipeName(RECIPES.reference!)).toBe("reference");
    expect(recipeName(recipeSchema.parse({}))).toBe("reference"); // unnamed, settings of the reference
    expect(recipeName(recipeSchema.parse({ weightDecay: 5e-4 }))).toBe("custom");
    expect(RECIPES["reference-affine"]!.augmentation).toEqual({
      kind: "affine",
      maxDegrees: 7,
      maxShift: 2,
      maxScale: 0,
    });
    expect(recipeSchema.safeParse({ augmentation: { kind: "rotate", maxDegrees: 200 } }).success).toBe(false);
    expect(recipeSchema.safeParse({ augmentation: { kind: "twist" } }).success).toBe(false);
  });

  it("an override renames the recipe so a run never claims a named recipe it did not use", () => {
    const r = applyOverrides(RECIPES.reference!, { augment: "affine", maxLr: 0.08 });
    expect(r.name).toBe("reference +max-lr=0.08 +augment=affine");
    expect(r.schedule).toMatchObject({ kind: "onecycle", maxLr: 0.08 });
    expect(r.augmentation).toEqual({ kind: "affine", maxDegrees: 7, maxShift: 2, maxScale: 0 });
    expect(applyOverrides(RECIPES.reference!, { epochs: 15, augment: "none" })).toEqual(RECIPES.reference);
  });
});

describe("augment preview", () => {
  it("draws 16 original/augmented pairs as SVG and PNG", () => {
    const fig = preview({ split: syntheticSplit(16, 3), augmentation: affine, seed: 1, epoch: 0 });
    expect(fig.svg.match(/<image /g)).toHaveLength(32);
    expect(pngSize(fig.png)).toEqual({ width: fig.width, height: fig.height });
    expect(fig.svg).toContain("Augmentation affine: rotate ±7°, shift ±2 px, scale 1 ± 0.1");
  });
});
