import { dirname, join, resolve } from "node:path";
import { mkdir } from "node:fs/promises";
import type { Command } from "commander";
import { z } from "zod";
import { augmentationOf, augmentationSchema, type Augmentation } from "@nnspec/spec";
import { UsageError } from "@nnspec/conformance";
import { augmentPreview } from "../../data/augment-preview.ts";
import { loadMnist } from "../../data/mnist.ts";
import { MnistFileError } from "../../data/idx.ts";
import { DownloadError } from "../../data/download.ts";
import { writeFileAtomic } from "../../plot/atomic-write.ts";
import { cliInt, parseCliOptions } from "../../train/cli-options.ts";
import { augmentKindSchema, resolveRecipe } from "../../train/recipe-options.ts";

const previewCliSchema = z
  .object({
    augment: augmentKindSchema.optional(),
    recipe: z.string().min(1).optional(),
    seed: cliInt(0).pipe(z.number().max(0xffffffff, "must fit in 32 bits")),
    epoch: cliInt(1),
    first: cliInt(0).pipe(z.number().max(59984, "must leave 16 images (≤ 59984)")),
    dataDir: z.string().min(1).optional(),
    out: z.string().min(1),
  })
  .strict();

/** `nnspec augment-preview`: 16 training digits, original beside augmented, as `<out>.png` and `<out>.svg`. */
export function registerAugmentPreview(program: Command): void {
  program
    .command("augment-preview")
    .description(
      "16 MNIST training digits beside their augmented versions (the training pipeline's own warp): PNG + SVG",
    )
    .option("--augment <kind>", "rotate | affine (default strengths), or take it from --recipe")
    .option("--recipe <name|file>", "the augmentation of this recipe (named or .json)")
    .option("--seed <n>", "run seed the draws come from", "1")
    .option("--epoch <n>", "epoch (1-based) whose draws are shown", "1")
    .option("--first <n>", "index of the first of the 16 training images", "0")
    .option("--data-dir <dir>", "folder with the four MNIST .gz files (else $MNIST_DIR, else the download cache)")
    .option("--out <base>", "output path without extension", join("out", "augment-preview", "augment"))
    .action(async (_raw: unknown, cmd: Command) => {
      const o = parseCliOptions(previewCliSchema, cmd.opts(), "augment-preview");
      let aug: Augmentation;
      if (o.recipe) {
        aug = augmentationOf(await resolveRecipe(o.recipe));
        if (o.augment && o.augment !== aug.kind) aug = augmentationSchema.parse({ kind: o.augment });
      } else aug = augmentationSchema.parse({ kind: o.augment ?? "affine" });
      if (aug.kind === "none")
        throw new UsageError(
          "nnspec augment-preview: the augmentation is none; pass --augment rotate|affine or a recipe with augmentation",
        );
      const data = await loadMnist(o.dataDir ? { dataDir: o.dataDir } : {}).catch((err: unknown) => {
        if (err instanceof MnistFileError || err instanceof DownloadError)
          throw new UsageError(err.message, { cause: err });
        throw err;
      });
      const fig = augmentPreview({
        split: data.train,
        augmentation: aug,
        seed: o.seed,
        epoch: o.epoch - 1,
        images: Array.from({ length: 16 }, (_, i) => o.first + i),
      });
      const base = resolve(o.out.replace(/\.(png|svg)$/i, ""));
      await mkdir(dirname(base), { recursive: true });
      await writeFileAtomic(`${base}.png`, fig.png);
      await writeFileAtomic(`${base}.svg`, fig.svg);
      console.log(`wrote ${base}.png (${fig.width} × ${fig.height})\n      ${base}.svg`);
    });
}
