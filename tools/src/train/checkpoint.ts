import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import { CNN_BUFFERS, CNN_PARAMS, finiteNumber, parseWith, recipeSchema, type CnnTensors } from "@nnspec/spec";
import { writeFileAtomic } from "../plot/atomic-write.ts";
import { epochRecordSchema } from "./run-record.ts";

/**
 * Checkpoint format (formatVersion 1): two files side by side.
 *  - `<name>.json`: this manifest (zod-validated on load).
 *  - `<name>.bin`: little-endian float32 tensors, concatenated: every CNN_PARAMS tensor, then every CNN_BUFFERS
 *    tensor, in that order (PyTorch state_dict order, row-major layouts as in spec/src/cnn/architecture.ts);
 *    num_batches_tracked is stored as one float32 (exact up to 2^24 batches).
 * The manifest lists each tensor's name, shape and byte offset, so a reader needs no code from here.
 * `training` holds what a resume needs: where the run stopped and the settings that must not change.
 * SGD momentum buffers are not saved: the CnnModel contract does not expose them, so a resumed run restarts
 * momentum from zero at the first step after the resume (PyTorch's first-step rule, buf = grad).
 */
const tensorSchema = z.object({
  name: z.string(),
  shape: z.array(z.number().int().min(0)),
  offset: z.number().int().min(0).multipleOf(4),
}).strict();

export const checkpointTrainingSchema = z.object({
  backend: z.string(),
  recipe: recipeSchema,
  seed: z.number().int(),
  limit: z.number().int().min(1).nullable(),
  epochsCompleted: z.number().int().min(0),
  /** Optimizer steps done so far = index of the next training forward (dropout step). */
  globalStep: z.number().int().min(0),
  history: z.array(epochRecordSchema),
  batchLoss: z.array(finiteNumber),
}).strict();
export type CheckpointTraining = z.infer<typeof checkpointTrainingSchema>;

export const checkpointManifestSchema = z.object({
  kind: z.literal("nnspec.cnn-checkpoint"),
  formatVersion: z.literal(1),
  dtype: z.literal("float32"),
  endianness: z.literal("little"),
  binFile: z.string().min(1),
  binBytes: z.number().int().min(0),
  parameters: z.array(tensorSchema),
  buffers: z.array(tensorSchema),
  training: checkpointTrainingSchema,
}).strict();
export type CheckpointManifest = z.infer<typeof checkpointManifestSchema>;

export interface Checkpoint {
  readonly parameters: Record<string, Float32Array>;
  readonly buffers: Record<string, Float32Array>;
  readonly training: CheckpointTraining;
}

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

const binPathFor = (jsonPath: string) => join(dirname(jsonPath), `${basename(jsonPath).replace(/\.json$/i, "")}.bin`);

/** Save parameters + BN buffers. `path` is the manifest (.json); the .bin goes beside it. Both written atomically, .bin first. */
export async function saveCheckpoint(path: string, params: CnnTensors, buffers: CnnTensors, training: CheckpointTraining): Promise<void> {
  const specs = [...CNN_PARAMS.map((s) => ({ s, src: params[s.name], group: "parameter" })), ...CNN_BUFFERS.map((s) => ({ s, src: buffers[s.name], group: "buffer" }))];
  const total = specs.reduce((a, { s }) => a + s.size, 0);
  const bin = new Float32Array(total);
  const entries: { name: string; shape: number[]; offset: number }[] = [];
  let at = 0;
  for (const { s, src, group } of specs) {
    if (!src) throw new CheckpointError(`cannot save checkpoint ${path}: the model has no ${group} "${s.name}"`);
    if (src.length !== s.size) throw new CheckpointError(`cannot save checkpoint ${path}: ${group} "${s.name}" has ${src.length} values, expected ${s.size}`);
    bin.set(src, at);
    entries.push({ name: s.name, shape: [...s.shape], offset: at * 4 });
    at += s.size;
  }
  const binPath = binPathFor(path);
  const manifest: CheckpointManifest = {
    kind: "nnspec.cnn-checkpoint", formatVersion: 1, dtype: "float32", endianness: "little",
    binFile: basename(binPath), binBytes: bin.byteLength,
    parameters: entries.slice(0, CNN_PARAMS.length), buffers: entries.slice(CNN_PARAMS.length), training,
  };
  // Float32Array is host-endian; every platform Node supports in practice is little-endian, checked here anyway.
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new CheckpointError("big-endian hosts are not supported for checkpoints");
  await writeFileAtomic(binPath, new Uint8Array(bin.buffer));
  await writeFileAtomic(path, `${JSON.stringify(manifest, null, 1)}\n`);
}

function readGroup(file: string, binFile: string, bin: Uint8Array, entries: CheckpointManifest["parameters"], specs: typeof CNN_PARAMS | typeof CNN_BUFFERS, group: string): Record<string, Float32Array> {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const out: Record<string, Float32Array> = {};
  for (const s of specs) {
    const e = byName.get(s.name);
    if (!e) throw new CheckpointError(`${file}: ${group} "${s.name}" is missing`);
    if (e.shape.length !== s.shape.length || e.shape.some((d, i) => d !== s.shape[i])) {
      throw new CheckpointError(`${file}: ${group} "${s.name}" has shape [${e.shape.join(", ")}], expected [${s.shape.join(", ")}]`);
    }
    if (e.offset + s.size * 4 > bin.byteLength) throw new CheckpointError(`${binFile}: ${group} "${s.name}" at byte ${e.offset} runs past the end of the .bin (${bin.byteLength} bytes)`);
    // Copy into a fresh aligned array (the offset need not be 4-aligned relative to the Buffer pool).
    const t = new Float32Array(s.size);
    new Uint8Array(t.buffer).set(bin.subarray(e.offset, e.offset + s.size * 4));
    const bad = t.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new CheckpointError(`${binFile}: ${group} "${s.name}" element ${bad} is ${t[bad]} (expected a finite number)`);
    out[s.name] = t;
    byName.delete(s.name);
  }
  const extra = [...byName.keys()];
  if (extra.length > 0) throw new CheckpointError(`${file}: unknown ${group}(s) ${extra.map((n) => `"${n}"`).join(", ")}`);
  return out;
}

export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new CheckpointError(`cannot read checkpoint ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const m = parseWith(checkpointManifestSchema, json, path);
  const binPath = join(dirname(path), m.binFile);
  const size = await stat(binPath).then((s) => s.size, () => -1);
  if (size < 0) throw new CheckpointError(`${path}: tensor file ${binPath} not found`);
  if (size !== m.binBytes) throw new CheckpointError(`${binPath}: ${size} bytes, manifest says ${m.binBytes} (truncated or from another checkpoint)`);
  const bin = await readFile(binPath);
  return {
    parameters: readGroup(path, binPath, bin, m.parameters, CNN_PARAMS, "parameter"),
    buffers: readGroup(path, binPath, bin, m.buffers, CNN_BUFFERS, "buffer"),
    training: m.training,
  };
}
