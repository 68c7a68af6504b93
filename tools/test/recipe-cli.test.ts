import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECIPES, recipeSettings } from "@nnspec/spec";
import { MNIST_FILES } from "../src/data/index.ts";
import { recipeFromCli, recipeResumeConflict } from "../src/train/recipe-options.ts";
import { runRecordSchema } from "../src/train/run-record.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const realDir = [process.env.MNIST_DIR, resolve(repoRoot, "../shared/data/mnist")].find(
  (d) => d && existsSync(join(d, MNIST_FILES.trainImages.name)),
);
const bin = join(repoRoot, "tools/bin/nnspec.js");

function nnspec(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: repoRoot, env: { ...process.env, NO_COLOR: "1" }, timeout: 110_000 },
      (err, stdout, stderr) => {
        ok({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-recipe-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cli = { recipe: undefined, epochs: 15, batch: 128, maxLr: 0.05 };

describe("the recipe from the command line", () => {
  it("only typed options override the recipe (defaults never undo a named recipe's settings)", async () => {
    const typed =
      (...keys: string[]) =>
      (k: string) =>
        keys.includes(k);
    expect(await recipeFromCli({ ...cli, recipe: "reference-affine" }, typed("recipe"))).toEqual(
      RECIPES["reference-affine"],
    );
    const r = await recipeFromCli(
      { ...cli, recipe: "reference-affine", epochs: 3, weightDecay: 1e-4 },
      typed("recipe", "epochs", "weightDecay"),
    );
    expect(r).toMatchObject({ name: "reference-affine +epochs=3 +weight-decay=0.0001", epochs: 3, weightDecay: 1e-4 });
    expect(r.augmentation).toEqual(RECIPES["reference-affine"]!.augmentation);
  });

  it("--dropout sets the recipe's rates and says so in its name; the architecture's rates change nothing", async () => {
    const typed = (k: string) => k === "dropout";
    const r = await recipeFromCli({ ...cli, dropout: [0.1, 0.1, 0.05] }, typed);
    expect(r).toMatchObject({ name: "reference +dropout=0.1,0.1,0.05", dropout: [0.1, 0.1, 0.05] });
    expect(await recipeFromCli({ ...cli, dropout: [0.2, 0.2, 0.15] }, typed)).toEqual(RECIPES.reference);
    // Absent rates are the architecture's: a record without the field equals one that spells them out.
    expect(recipeSettings({ ...RECIPES.reference!, dropout: [0.2, 0.2, 0.15] })).toBe(
      recipeSettings(RECIPES.reference!),
    );
    expect(await recipeResumeConflict(RECIPES.reference!, { ...cli, dropout: [0, 0, 0] }, typed)).toMatch(/differs/);
    expect(await recipeResumeConflict(r, { ...cli, dropout: [0.1, 0.1, 0.05] }, typed)).toBeNull();
  });

  it("a resume refuses a different recipe, augmentation or weight decay, and accepts the same", async () => {
    const saved = RECIPES["reference-affine"]!;
    const typed =
      (...keys: string[]) =>
      (k: string) =>
        keys.includes(k);
    expect(await recipeResumeConflict(saved, { ...cli, augment: "affine" }, typed("augment"))).toBeNull();
    expect(await recipeResumeConflict(saved, { ...cli, recipe: "reference-affine" }, typed("recipe"))).toBeNull();
    expect(await recipeResumeConflict(saved, { ...cli, augment: "rotate" }, typed("augment"))).toMatch(
      /differs from the checkpoint's/,
    );
    expect(await recipeResumeConflict(saved, { ...cli, recipe: "reference" }, typed("recipe"))).toMatch(/differs/);
    expect(await recipeResumeConflict(saved, { ...cli, weightDecay: 5e-4 }, typed("weightDecay"))).toMatch(/differs/);
    expect(await recipeResumeConflict(saved, cli, typed())).toBeNull();
  });
});

describe("nnspec train --recipe / --augment (CLI)", () => {
  it("unknown recipes, invalid recipe files and unknown augmentations are one-line usage errors (exit 2)", async () => {
    let r = await nnspec(["train", "--recipe", "fastest"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      "error: --recipe fastest: not a named recipe (reference, reference-rotate, reference-affine, half-dropout) nor a .json file",
    );
    const bad = join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ name: "x", augmentation: { kind: "rotate", maxDegrees: 400 } }));
    r = await nnspec(["train", "--recipe", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`error: --recipe ${bad}: field augmentation.maxDegrees: must be in 0..180 degrees`);
    r = await nnspec(["train", "--dropout", "0.1,0.1"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      'error: nnspec train: option --dropout: dropout rates: expected 3 (one per dropout layer), got 2 (got "0.1,0.1")',
    );
    r = await nnspec(["train", "--dropout", "0.1,1,x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /option --dropout: dropout rate 1 \(drop2\): must be in \[0, 1\), got 1; dropout rate 2 \(drop3\): must be in \[0, 1\), got NaN/,
    );
    r = await nnspec(["train", "--augment", "twist"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/option --augment: .*none.*rotate.*affine.*\(got "twist"\)/);
  });

  it.runIf(realDir)("a recipe file trains with its settings and run.json names it", async () => {
    const file = join(dir, "tiny.json");
    await writeFile(
      file,
      JSON.stringify({
        name: "tiny-rotate",
        batchSize: 32,
        epochs: 1,
        augmentation: { kind: "rotate", maxDegrees: 10 },
      }),
    );
    const out = join(dir, "run");
    const r = await nnspec([
      "train",
      "--recipe",
      file,
      "--limit",
      "64",
      "--test-limit",
      "50",
      "--data-dir",
      realDir!,
      "--out",
      out,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const rec = runRecordSchema.parse(JSON.parse(await readFile(join(out, "run.json"), "utf8")));
    expect(rec.recipe).toMatchObject({
      name: "tiny-rotate",
      batchSize: 32,
      epochs: 1,
      augmentation: { kind: "rotate", maxDegrees: 10 },
    });
    expect(rec.stepsPerEpoch).toBe(2);
  });
});
