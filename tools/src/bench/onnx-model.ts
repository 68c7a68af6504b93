import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { z } from "zod";
import { CNN_PARAMS, finiteNumber } from "@nnspec/spec";
import { killTree } from "./process-tree.ts";
import { REPO_ROOT } from "./plan.ts";

/**
 * The ONNX model of the inference peers: exported by fixtures/cnn-generator/export_onnx.py (the golden generator's
 * network, PyTorch's own exporter) into the bench's temporary folder, and read back here without an ONNX library
 * (a few protobuf fields), so a test can check that the file holds the spec's parameters.
 */

export const EXPORT_SCRIPT = resolve(REPO_ROOT, "fixtures/cnn-generator/export_onnx.py");

/** An ONNX Runtime peer row's options (job.options, and the row's options in results.json). */
export const onnxPeerOptionsSchema = z
  .object({ runtime: z.enum(["onnxruntime-node", "onnxruntime-web"]), threads: z.number().int().min(1) })
  .strict();
export type OnnxPeerOptions = z.infer<typeof onnxPeerOptionsSchema>;

/** What export_onnx.py prints on stdout (one JSON line). */
export const onnxExportInfoSchema = z
  .object({
    onnx: z.string(),
    bytes: z.number().int(),
    opset: z.number().int(),
    parameters: z.number().int(),
    torch: z.string(),
    input: z.string(),
    output: z.string(),
    check: z.string().optional(),
  })
  .strict();
export type OnnxExportInfo = z.infer<typeof onnxExportInfoSchema>;

/** The fixed batch and PyTorch float32's eval log-probs for it (export_onnx.py --check). */
export const onnxCheckSchema = z
  .object({
    batch: z.number().int().min(1),
    seed: z.number().int(),
    reference: z.string().min(1),
    x: z.array(finiteNumber),
    logProbs: z.array(finiteNumber),
  })
  .strict()
  .refine(
    (c) => c.x.length === c.batch * 784 && c.logProbs.length === c.batch * 10,
    "x must hold batch × 784 values and logProbs batch × 10",
  );
export type OnnxCheck = z.infer<typeof onnxCheckSchema>;

export interface ExportedModel {
  readonly model: string;
  readonly check: string;
  readonly info: OnnxExportInfo;
  readonly seconds: number;
}

/**
 * Run the export (async: the bench's progress display keeps drawing). `parametersFile`: JSON of state_dict name →
 * values (the peer data file). Rejects with one line naming what failed; a hang is killed after `timeoutSeconds`.
 */
export function exportOnnx(o: {
  python: string;
  outDir: string;
  parametersFile: string;
  timeoutSeconds: number;
  script?: string;
}): Promise<ExportedModel> {
  const model = join(o.outDir, "cnn.onnx");
  const check = join(o.outDir, "cnn.check.json");
  const args = [o.script ?? EXPORT_SCRIPT, "--out", model, "--parameters", o.parametersFile, "--check", check];
  const t0 = performance.now();
  return new Promise((ok, fail) => {
    const child = spawn(o.python, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killTree(child.pid);
    }, o.timeoutSeconds * 1000);
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      stderr = (stderr + s).slice(-4000);
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      fail(new Error(`ONNX export: cannot run ${o.python}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return fail(new Error(`ONNX export: no result within ${o.timeoutSeconds} s; killed`));
      // The last stderr line is Python's exception; torch's warnings come before it.
      if (code !== 0)
        return fail(
          new Error(
            `ONNX export ${signal ? `killed by ${signal}` : `exited with code ${code}`}: ${stderr.trim().split("\n").at(-1) ?? ""}`,
          ),
        );
      const parsed = onnxExportInfoSchema.safeParse(
        (() => {
          try {
            return JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
          } catch {
            return null;
          }
        })(),
      );
      if (!parsed.success) return fail(new Error(`ONNX export printed no valid summary: ${stdout.slice(0, 200)}`));
      ok({ model, check, info: parsed.data, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

/** The parts of an ONNX ModelProto the bench reports: opset, producer, operators, initializers. */
export interface OnnxSummary {
  readonly producer: string;
  readonly opset: number | null;
  readonly ops: readonly string[];
  readonly initializers: ReadonlyArray<{ name: string; dims: readonly number[] }>;
  /**
   * Identity outputs → their input. PyTorch's exporter stores equal constants once (an initialised model's
   * BatchNorm weights are all ones) and names the others through Identity nodes.
   */
  readonly aliases: ReadonlyMap<string, string>;
}

/** Protobuf wire format, the fields we need only (onnx.proto3: ModelProto, GraphProto, NodeProto, TensorProto). */
function* fields(
  buf: Uint8Array,
  start = 0,
  end = buf.length,
): Generator<{ field: number; wire: number; value: number; start: number; end: number }> {
  let p = start;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (p >= end) throw new Error("truncated ONNX protobuf");
      const b = buf[p++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (p < end) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) yield { field, wire, value: varint(), start: p, end: p };
    else if (wire === 1) {
      p += 8;
      yield { field, wire, value: 0, start: p - 8, end: p };
    } else if (wire === 5) {
      p += 4;
      yield { field, wire, value: 0, start: p - 4, end: p };
    } else if (wire === 2) {
      const len = varint();
      if (p + len > end) throw new Error("truncated ONNX protobuf");
      yield { field, wire, value: len, start: p, end: p + len };
      p += len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}

export function onnxSummary(bytes: Uint8Array): OnnxSummary {
  const text = (s: number, e: number) => new TextDecoder().decode(bytes.subarray(s, e));
  let producer = "";
  let opset: number | null = null;
  const ops: string[] = [];
  const initializers: { name: string; dims: number[] }[] = [];
  const aliases = new Map<string, string>();
  for (const m of fields(bytes)) {
    if (m.field === 2 && m.wire === 2) producer = text(m.start, m.end);
    else if (m.field === 8 && m.wire === 2) {
      // OperatorSetIdProto: domain (1, "" = the default ai.onnx domain), version (2).
      let domain = "";
      let version = 0;
      for (const f of fields(bytes, m.start, m.end)) {
        if (f.field === 1 && f.wire === 2) domain = text(f.start, f.end);
        if (f.field === 2 && f.wire === 0) version = f.value;
      }
      if (domain === "" || domain === "ai.onnx") opset = version;
    } else if (m.field === 7 && m.wire === 2) {
      for (const g of fields(bytes, m.start, m.end)) {
        if (g.field === 1 && g.wire === 2) {
          // NodeProto: input (1), output (2), op_type (4).
          const io: Record<number, string[]> = { 1: [], 2: [] };
          let op = "";
          for (const n of fields(bytes, g.start, g.end)) {
            if (n.field === 4 && n.wire === 2) op = text(n.start, n.end);
            else if ((n.field === 1 || n.field === 2) && n.wire === 2) io[n.field]!.push(text(n.start, n.end));
          }
          ops.push(op);
          if (op === "Identity" && io[1]!.length === 1 && io[2]!.length === 1) aliases.set(io[2]![0]!, io[1]![0]!);
        } else if (g.field === 5 && g.wire === 2) {
          let name = "";
          const dims: number[] = [];
          for (const t of fields(bytes, g.start, g.end)) {
            if (t.field === 8 && t.wire === 2) name = text(t.start, t.end);
            else if (t.field === 1 && t.wire === 0) dims.push(t.value);
            else if (t.field === 1 && t.wire === 2)
              for (const d of fields(packed(bytes, t.start, t.end))) dims.push(d.value);
          }
          initializers.push({ name, dims });
        }
      }
    }
  }
  return { producer, opset, ops, initializers, aliases };
}

/** A packed repeated varint field, re-keyed as field-1 varints so fields() can walk it. */
function packed(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const out: number[] = [];
  for (let p = start; p < end; p++) {
    if (p === start || bytes[p - 1]! < 0x80) out.push(0x08);
    out.push(bytes[p]!);
  }
  return Uint8Array.from(out);
}

/** The spec's parameters found in the model (stored, or an Identity of a stored equal constant), by name and shape; what is missing or misshapen; the total. */
export function specParametersIn(s: OnnxSummary): { count: number; missing: string[]; misshapen: string[] } {
  const byName = new Map(s.initializers.map((i) => [i.name, i.dims]));
  const missing: string[] = [];
  const misshapen: string[] = [];
  let count = 0;
  for (const p of CNN_PARAMS) {
    const dims = byName.get(p.name) ?? byName.get(s.aliases.get(p.name) ?? "");
    if (!dims) missing.push(p.name);
    else if (dims.join("x") !== p.shape.join("x"))
      misshapen.push(`${p.name} [${dims.join(", ")}], spec [${p.shape.join(", ")}]`);
    else count += p.size;
  }
  return { count, missing, misshapen };
}
