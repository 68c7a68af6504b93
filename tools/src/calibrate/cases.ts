import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { mulberry32 } from "@nnspec/spec";
import { CNN_FIXTURE_DIR } from "@nnspec/fixtures";

const run = promisify(execFile);

/** The CNN golden generator (PyTorch float64) and the Python that has torch (Debian's python3-torch). */
export const CNN_GENERATOR = resolve(CNN_FIXTURE_DIR, "..", "cnn-generator", "generate.py");
export const PYTHON = process.env.NNSPEC_PYTHON ?? "/usr/bin/python3";

export const INPUT_KINDS = ["synthetic", "randn", "mnist", "ties"] as const;
export type InputKind = (typeof INPUT_KINDS)[number];
const BATCHES = [2, 3, 4, 5, 8, 16] as const;
/** Mostly the committed 5e-4, sometimes none or ten times more: the optimizer checks must hold for each. */
const WEIGHT_DECAYS = [5e-4, 5e-4, 5e-4, 0, 5e-3] as const;

/** One fresh case, entirely determined by its seed (so a failure reproduces from the seed alone). */
export interface FreshCase {
  readonly seed: number;
  readonly batch: number;
  readonly inputs: InputKind;
  readonly weightDecay: number;
  readonly name: string;
}

/** The case a seed stands for. Without MNIST files an "mnist" draw becomes "randn" (said in the case's line). */
export function caseFromSeed(seed: number, mnistAvailable: boolean): FreshCase {
  const r = mulberry32(seed ^ 0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const batch = pick(BATCHES);
  let inputs = pick(INPUT_KINDS);
  if (inputs === "mnist" && !mnistAvailable) inputs = "randn";
  const weightDecay = pick(WEIGHT_DECAYS);
  return { seed, batch, inputs, weightDecay, name: `fresh-${seed}-${inputs}-b${batch}` };
}

/** `count` case seeds drawn from `base` (itself drawn at run time unless given). */
export function caseSeeds(base: number, count: number): number[] {
  const r = mulberry32(base);
  return Array.from({ length: count }, () => 1 + Math.floor(r() * 2_000_000_000));
}

/** The generator's arguments for a case: the line printed for each case reproduces it. */
export function generatorArgs(c: FreshCase): string[] {
  return [
    "--seed",
    String(c.seed),
    "--batch",
    String(c.batch),
    "--inputs",
    c.inputs,
    "--weight-decay",
    String(c.weightDecay),
    "--name",
    c.name,
  ];
}

export function describeCase(c: FreshCase): string {
  return `seed ${c.seed}: ${c.inputs} inputs, batch ${c.batch}, weight decay ${c.weightDecay} (python3 ${join("fixtures", "cnn-generator", "generate.py")} ${generatorArgs(c).join(" ")})`;
}

/** The MNIST folder the generator reads (read-only), when the four files are there. */
export function mnistDir(env: Record<string, string | undefined> = process.env): string | null {
  const dir = env.MNIST_DIR || resolve(CNN_FIXTURE_DIR, "..", "..", "..", "shared", "data", "mnist");
  return existsSync(join(dir, "train-images-idx3-ubyte.gz")) && existsSync(join(dir, "train-labels-idx1-ubyte.gz"))
    ? dir
    : null;
}

/** Write the case into `dir` with the PyTorch generator; returns the manifest's path. */
export async function generateCase(c: FreshCase, dir: string, mnist: string | null): Promise<string> {
  const env = { ...process.env, ...(mnist ? { MNIST_DIR: mnist } : {}) };
  try {
    await run(PYTHON, [CNN_GENERATOR, ...generatorArgs(c), "--out", dir], { env, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `generating case ${describeCase(c)} failed: ${(e.stderr ?? "").trim().split("\n").slice(-3).join(" | ") || e.message}`,
    );
  }
  return join(dir, `${c.name}.json`);
}

/** Why the generator cannot run here (no torch for PYTHON), or null. */
export async function generatorUnavailable(): Promise<string | null> {
  try {
    await run(PYTHON, ["-c", "import torch"]);
    return null;
  } catch {
    return `${PYTHON} cannot import torch (install Debian's python3-torch, or set NNSPEC_PYTHON)`;
  }
}
