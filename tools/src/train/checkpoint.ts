import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import {
  CNN_BUFFERS,
  CNN_PARAMS,
  binFileNameSchema,
  finiteNumber,
  parseWith,
  precisionSchema,
  recipeSchema,
  type CnnTensors,
  type Precision,
} from "@nnspec/spec";
import { FixtureReadError, nodeFixtureIO } from "@nnspec/fixtures";
import { writeFileAtomic } from "../plot/atomic-write.ts";
import { epochRecordV1Schema, epochRecordSchema, segmentSchema } from "./run-record.ts";

/**
 * Checkpoint format (formatVersion 2): a manifest `<name>.json` and a tensor file it names.
 *  - The tensor file is `<name>.step<N>.<first 12 hex of its SHA-256>.bin`: a new name for every save, so the
 *    manifest and its .bin are one unit. A save writes the new .bin first, then renames the manifest over the old
 *    one, then removes the .bin the old manifest named: a crash at any point leaves a manifest and the .bin it names.
 *    The manifest records the .bin's size and SHA-256; a .bin that does not match is refused.
 *  - The .bin holds little-endian float32 tensors, concatenated: every CNN_PARAMS tensor, every CNN_BUFFERS tensor
 *    (PyTorch state_dict order and layouts; num_batches_tracked as one float32, exact up to 2^24 batches), then the
 *    SGD momentum buffer of every parameter when the backend exposes it (capability cnn.optimizer-state).
 *  - `training` holds what a resume needs: where the run stopped (an epoch boundary, or inside an epoch after an
 *    interruption), the settings that must not change, the history, and which backend trained which steps.
 * Nothing non-finite is ever written: a save refuses it.
 * formatVersion 1 (one fixed `<name>.bin`, no hash, no momentum) is still read; resuming it needs --restart-momentum.
 */
const tensorSchema = z
  .object({
    name: z.string(),
    shape: z.array(z.number().int().min(0)),
    offset: z.number().int().min(0).multipleOf(4),
  })
  .strict();

/** Progress inside an epoch that an interruption cut short (batches done, and the running sums of the epoch). */
export const partialEpochSchema = z
  .object({
    batchesDone: z.number().int().min(0),
    lossSum: finiteNumber,
    correct: z.number().int().min(0),
    seen: z.number().int().min(0),
    trainSeconds: finiteNumber,
    lastLr: finiteNumber,
  })
  .strict();
export type PartialEpoch = z.infer<typeof partialEpochSchema>;

export const checkpointTrainingSchema = z
  .object({
    /** Manifest name, precision and how to load again (what was given to --backend, and its options) of the saving backend. */
    backend: z.string(),
    precision: precisionSchema,
    backendSpecifier: z.string().min(1),
    backendOptions: z.record(z.string()),
    recipe: recipeSchema,
    seed: z.number().int(),
    limit: z.number().int().min(1).nullable(),
    testLimit: z.number().int().min(1).nullable(),
    evalBatchSize: z.number().int().min(1),
    epochsCompleted: z.number().int().min(0),
    /** Optimizer steps done so far = index of the next training forward (dropout step). */
    globalStep: z.number().int().min(0),
    /** Set when saved inside an epoch (an interruption): the epoch `epochsCompleted + 1` is that far along. */
    partialEpoch: partialEpochSchema.nullable(),
    history: z.array(epochRecordSchema),
    batchLoss: z.array(finiteNumber),
    segments: z.array(segmentSchema),
  })
  .strict();
export type CheckpointTraining = z.infer<typeof checkpointTrainingSchema>;

const trainingV1Schema = z
  .object({
    backend: z.string(),
    recipe: recipeSchema,
    seed: z.number().int(),
    limit: z.number().int().min(1).nullable(),
    epochsCompleted: z.number().int().min(0),
    globalStep: z.number().int().min(0),
    history: z.array(epochRecordV1Schema),
    batchLoss: z.array(finiteNumber),
  })
  .strict();

const common = {
  dtype: z.literal("float32"),
  endianness: z.literal("little"),
  binFile: binFileNameSchema,
  binBytes: z.number().int().min(0),
  parameters: z.array(tensorSchema),
  buffers: z.array(tensorSchema),
};
export const checkpointManifestSchema = z
  .object({
    kind: z.literal("nnspec.cnn-checkpoint"),
    formatVersion: z.literal(2),
    ...common,
    binSha256: z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits"),
    /** SGD momentum per parameter; null: the saving backend could not export it; [] before the first step. */
    momentum: z.array(tensorSchema).nullable(),
    training: checkpointTrainingSchema,
  })
  .strict();
export type CheckpointManifest = z.infer<typeof checkpointManifestSchema>;
const manifestV1Schema = z
  .object({
    kind: z.literal("nnspec.cnn-checkpoint"),
    formatVersion: z.literal(1),
    ...common,
    training: trainingV1Schema,
  })
  .strict();
const anyManifestSchema = z.discriminatedUnion("formatVersion", [checkpointManifestSchema, manifestV1Schema]);

export interface Checkpoint {
  readonly formatVersion: 1 | 2;
  readonly parameters: Record<string, Float32Array>;
  readonly buffers: Record<string, Float32Array>;
  /** Momentum per parameter ({} before the first step), or null when the checkpoint has none. */
  readonly momentum: Record<string, Float32Array> | null;
  readonly training: CheckpointTraining;
  /** False for formatVersion 1, which recorded neither --test-limit nor --eval-batch nor the precision. */
  readonly settingsRecorded: boolean;
  readonly binPath: string;
}

export interface CheckpointState {
  readonly parameters: CnnTensors;
  readonly buffers: CnnTensors;
  /** null: the backend cannot export its optimizer state. */
  readonly momentum: CnnTensors | null;
}

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

const stemOf = (jsonPath: string) => basename(jsonPath).replace(/\.json$/i, "");

/** The first non-finite value of a tensor group, as "group name[i] = v", or null. */
export function firstNonFinite(t: CnnTensors, names: readonly string[], group: string): string | null {
  for (const name of names) {
    const a = t[name];
    if (!a) continue;
    // A sum is cheap and non-finite exactly when some element is (float64 cannot overflow on float32 values here).
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]!;
    if (Number.isFinite(s)) continue;
    for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return `${group} ${name}[${i}] = ${a[i]}`;
  }
  return null;
}

/** The manifest at `path` if one is there and names a .bin (to remove it once superseded); anything else: null. */
async function previousBin(path: string): Promise<string | null> {
  try {
    const m = z
      .object({ binFile: binFileNameSchema })
      .passthrough()
      .safeParse(JSON.parse(await readFile(path, "utf8")));
    return m.success ? m.data.binFile : null;
  } catch {
    return null;
  }
}

/**
 * Save parameters, BN buffers and momentum. `path` is the manifest (.json); its .bin goes beside it under a name of
 * its own (see the format above). Refuses non-finite values before touching any file. Returns the .bin's path.
 */
export async function saveCheckpoint(
  path: string,
  state: CheckpointState,
  training: CheckpointTraining,
): Promise<string> {
  const groups: Array<{
    group: string;
    specs: readonly { name: string; size: number; shape: readonly number[] }[];
    src: CnnTensors;
  }> = [
    { group: "parameter", specs: CNN_PARAMS, src: state.parameters },
    { group: "buffer", specs: CNN_BUFFERS, src: state.buffers },
  ];
  const momentumKeys = state.momentum === null ? null : Object.keys(state.momentum);
  if (state.momentum && momentumKeys!.length > 0)
    groups.push({ group: "momentum", specs: CNN_PARAMS, src: state.momentum });
  for (const g of groups) {
    const bad = firstNonFinite(
      g.src,
      g.specs.map((s) => s.name),
      g.group,
    );
    if (bad)
      throw new CheckpointError(
        `refusing to save checkpoint ${path}: ${bad} (a checkpoint never holds a non-finite value)`,
      );
  }
  const total = groups.reduce((a, g) => a + g.specs.reduce((b, s) => b + s.size, 0), 0);
  const bin = new Float32Array(total);
  const entries: Record<string, { name: string; shape: number[]; offset: number }[]> = {
    parameter: [],
    buffer: [],
    momentum: [],
  };
  let at = 0;
  for (const { group, specs, src } of groups) {
    for (const s of specs) {
      const t = src[s.name];
      if (!t) throw new CheckpointError(`cannot save checkpoint ${path}: the model has no ${group} "${s.name}"`);
      if (t.length !== s.size)
        throw new CheckpointError(
          `cannot save checkpoint ${path}: ${group} "${s.name}" has ${t.length} values, expected ${s.size}`,
        );
      bin.set(t, at);
      entries[group]!.push({ name: s.name, shape: [...s.shape], offset: at * 4 });
      at += s.size;
    }
  }
  // Float32Array is host-endian; every platform Node supports in practice is little-endian, checked here anyway.
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
    throw new CheckpointError("big-endian hosts are not supported for checkpoints");
  const bytes = new Uint8Array(bin.buffer);
  const sha = createHash("sha256").update(bytes).digest("hex");
  const binFile = `${stemOf(path)}.step${training.globalStep}.${sha.slice(0, 12)}.bin`;
  const manifest: CheckpointManifest = {
    kind: "nnspec.cnn-checkpoint",
    formatVersion: 2,
    dtype: "float32",
    endianness: "little",
    binFile,
    binBytes: bytes.byteLength,
    binSha256: sha,
    parameters: entries.parameter!,
    buffers: entries.buffer!,
    momentum: state.momentum === null ? null : entries.momentum!,
    training: checkpointTrainingSchema.parse(training),
  };
  const old = await previousBin(path);
  const binPath = join(dirname(path), binFile);
  await writeFileAtomic(binPath, bytes);
  await writeFileAtomic(path, `${JSON.stringify(manifest, null, 1)}\n`);
  // Only now is the old .bin unreferenced.
  if (old && old !== binFile) await rm(join(dirname(path), old), { force: true });
  return binPath;
}

function readGroup(
  file: string,
  binFile: string,
  bin: Uint8Array,
  entries: CheckpointManifest["parameters"],
  specs: typeof CNN_PARAMS | typeof CNN_BUFFERS,
  group: string,
): Record<string, Float32Array> {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const out: Record<string, Float32Array> = {};
  for (const s of specs) {
    const e = byName.get(s.name);
    if (!e) throw new CheckpointError(`${file}: ${group} "${s.name}" is missing`);
    if (e.shape.length !== s.shape.length || e.shape.some((d, i) => d !== s.shape[i])) {
      throw new CheckpointError(
        `${file}: ${group} "${s.name}" has shape [${e.shape.join(", ")}], expected [${s.shape.join(", ")}]`,
      );
    }
    if (e.offset + s.size * 4 > bin.byteLength)
      throw new CheckpointError(
        `${binFile}: ${group} "${s.name}" at byte ${e.offset} runs past the end of the .bin (${bin.byteLength} bytes)`,
      );
    // Copy into a fresh aligned array (the offset need not be 4-aligned relative to the Buffer pool).
    const t = new Float32Array(s.size);
    new Uint8Array(t.buffer).set(bin.subarray(e.offset, e.offset + s.size * 4));
    const bad = t.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new CheckpointError(
        `${binFile}: ${group} "${s.name}" element ${bad} is ${t[bad]} (expected a finite number)`,
      );
    out[s.name] = t;
    byName.delete(s.name);
  }
  const extra = [...byName.keys()];
  if (extra.length > 0)
    throw new CheckpointError(`${file}: unknown ${group}(s) ${extra.map((n) => `"${n}"`).join(", ")}`);
  return out;
}

/** A formatVersion 1 record in today's shape; what it did not record is marked so (see `settingsRecorded`). */
function upgradeV1(t: z.infer<typeof trainingV1Schema>): CheckpointTraining {
  return {
    backend: t.backend,
    precision: "float32" satisfies Precision,
    backendSpecifier: t.backend,
    backendOptions: {},
    recipe: t.recipe,
    seed: t.seed,
    limit: t.limit,
    testLimit: null,
    evalBatchSize: 1000,
    epochsCompleted: t.epochsCompleted,
    globalStep: t.globalStep,
    partialEpoch: null,
    // Version 1 did not record who trained an epoch: [] says "not recorded".
    history: t.history.map((e) => ({ ...e, trainedBy: [] })),
    batchLoss: t.batchLoss,
    segments: [],
  };
}

/** Load and verify a checkpoint: every error is one line naming the file and the field or tensor. */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  let text: string;
  try {
    text = new TextDecoder().decode(await nodeFixtureIO.readBytes(path));
  } catch (err) {
    throw new CheckpointError(`cannot read checkpoint ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const m = parseWith(anyManifestSchema, json, path);
  const binPath = join(dirname(path), m.binFile);
  let bin: Uint8Array;
  try {
    // Regular file of exactly binBytes, checked before a byte is read (a device or FIFO would never end).
    bin = await nodeFixtureIO.readBytes(binPath, m.binBytes);
  } catch (err) {
    if (err instanceof FixtureReadError && err.missing)
      throw new CheckpointError(`${path}: its tensor file ${binPath} does not exist`);
    throw new CheckpointError(`${binPath}: ${(err as Error).message}`);
  }
  if (m.formatVersion === 2) {
    const sha = createHash("sha256").update(bin).digest("hex");
    if (sha !== m.binSha256)
      throw new CheckpointError(
        `${binPath}: SHA-256 ${sha.slice(0, 12)}… does not match ${basename(path)}'s ${m.binSha256.slice(0, 12)}… (the pair comes from two different saves)`,
      );
  }
  const training = m.formatVersion === 2 ? m.training : upgradeV1(m.training);
  return {
    formatVersion: m.formatVersion,
    parameters: readGroup(path, binPath, bin, m.parameters, CNN_PARAMS, "parameter"),
    buffers: readGroup(path, binPath, bin, m.buffers, CNN_BUFFERS, "buffer"),
    momentum:
      m.formatVersion === 2 && m.momentum !== null
        ? m.momentum.length === 0
          ? {}
          : readGroup(path, binPath, bin, m.momentum, CNN_PARAMS, "momentum")
        : null,
    training,
    settingsRecorded: m.formatVersion === 2,
    binPath,
  };
}
