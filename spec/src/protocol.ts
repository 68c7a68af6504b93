import { z } from "zod";
import { manifestSchema } from "./backend.ts";
import { BLOCK_OUTPUTS, dropoutRatesProblems, type BlockName } from "./cnn/architecture.ts";
import {
  FORWARD_NAMES,
  WEIGHT_NAMES,
  net222ConfigSchema,
  stepsSchema,
  type ForwardName,
  type WeightName,
} from "./net222/config.ts";
import { finiteNumber, type FloatArray } from "./numbers.ts";

/**
 * The backend pipe protocol (docs/backend-protocol.md): how the judge drives a backend that runs as its own process,
 * written in any language. It is part of the contract: every method of `Backend` (backend.ts) and `CnnModel`
 * (cnn/contract.ts) is one call, with the same arguments and results.
 *
 * Framing, both directions, over the process's stdin (judge → backend) and stdout (backend → judge):
 *   one JSON object on one line (UTF-8, ending in "\n"), then the raw bytes of the tensors it announces.
 * A message may carry a top-level `"tensors": [{"dtype": "float64", "length": 3136}, ...]`; exactly that many bytes
 * follow the newline (little-endian IEEE 754, float32 = 4 bytes, float64 = 8, no padding, in list order), and the
 * object refers to tensor k as `{"$tensor": k}` anywhere inside it. A non-finite number is `{"$float": "NaN"}`
 * ("Infinity", "-Infinity"), since JSON has none. stderr is the backend's own (the judge shows it on failure).
 *
 * This module runs anywhere (no node: imports): frames are Uint8Arrays.
 */
export const PROTOCOL_VERSION = 1;

/** Announced sizes beyond these are a protocol violation, not an allocation. */
export const MAX_HEADER_BYTES = 64 * 1024 * 1024;
export const MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024;

export const TENSOR_DTYPES = ["float32", "float64"] as const;
export type TensorDtype = (typeof TENSOR_DTYPES)[number];
const BYTES: Readonly<Record<TensorDtype, number>> = { float32: 4, float64: 8 };

export const tensorHeaderSchema = z
  .object({
    dtype: z.enum(TENSOR_DTYPES),
    length: z
      .number()
      .int()
      .min(0)
      .max(MAX_PAYLOAD_BYTES / 4),
  })
  .strict();
export type TensorHeader = z.infer<typeof tensorHeaderSchema>;

/** A broken frame or message: the connection cannot be trusted any more. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

// --- values as they arrive (tensors already substituted) ---------------------------------------------------

const describeValue = (v: unknown): string => {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return "an array that is not all numbers";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === "object") {
    const name = (v as object).constructor?.name;
    return name && name !== "Object" ? `a ${name}` : "a plain object";
  }
  return typeof v;
};

/** A number on the wire: finite, ±Infinity or NaN (a backend may compute NaN; the checks judge it). Never a string. */
export const wireNumber = z.unknown().transform((v, ctx): number => {
  if (typeof v === "number") return v;
  ctx.addIssue({
    code: z.ZodIssueCode.custom,
    message: v === undefined ? "missing (expected a number)" : `expected a number, got ${describeValue(v)}`,
  });
  return z.NEVER;
});

/** A tensor: Float32Array or Float64Array (a plain array of numbers is accepted and read as float64). */
export const tensorSchema = z.unknown().transform((v, ctx): FloatArray => {
  if (v instanceof Float32Array || v instanceof Float64Array) return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "number")) return Float64Array.from(v as number[]);
  ctx.addIssue({
    code: z.ZodIssueCode.custom,
    message: `expected a float32 or float64 tensor, got ${describeValue(v)}`,
  });
  return z.NEVER;
});
/** Tensors keyed by state_dict name, in the order given (CnnTensors). */
export const tensorsSchema = z.record(z.string(), tensorSchema);

const numbersOf = <K extends string>(names: readonly K[]) =>
  z.object(Object.fromEntries(names.map((n) => [n, wireNumber])) as Record<K, typeof wireNumber>);
const forwardValues = numbersOf<ForwardName>(FORWARD_NAMES);
const weightValues = numbersOf<WeightName>(WEIGHT_NAMES);

/** A model living in the backend process, named by the number `cnn.create` returned. */
export const modelHandleSchema = z.number().int().min(1);
const model = { model: modelHandleSchema };

const cnnForwardOptionsSchema = z
  .object({
    mode: z.enum(["train", "eval"]),
    dropout: z
      .object({
        seed: z.number().int(),
        step: z.number().int().min(0),
        rates: z
          .array(z.number())
          .superRefine((r, ctx) => {
            for (const message of dropoutRatesProblems(r)) ctx.addIssue({ code: z.ZodIssueCode.custom, message });
          })
          .readonly()
          .optional(),
      })
      .strict()
      .optional(),
    record: z.boolean().optional(),
  })
  .strict();

/** A void result: the reply's value is null (anything else is ignored). */
const nothing = z.unknown().transform((): void => undefined);

/**
 * Every call: its arguments (what the judge sends, named) and its result (what the backend replies). The judge
 * validates every result with these schemas, whether the backend runs in its process or in another.
 */
export const PROTOCOL_METHODS = {
  "net222.forward": { args: z.object({ config: net222ConfigSchema }).strict(), result: forwardValues },
  "net222.gradients": { args: z.object({ config: net222ConfigSchema }).strict(), result: weightValues },
  "net222.step": { args: z.object({ config: net222ConfigSchema, lr: finiteNumber }).strict(), result: weightValues },
  "net222.train": {
    args: z.object({ config: net222ConfigSchema, lr: finiteNumber, steps: stepsSchema }).strict(),
    result: z.array(
      z.object({
        step: z.number().int().min(0),
        weights: weightValues,
        forward: forwardValues,
        gradients: weightValues,
      }),
    ),
  },
  "cnn.create": {
    args: z.object({ parameters: tensorsSchema, buffers: tensorsSchema.optional() }).strict(),
    result: z.object(model),
  },
  "model.summary": {
    args: z.object(model).strict(),
    result: z.array(
      z.object({ layer: z.string(), outputShape: z.array(z.number().int().min(0)), params: z.number().int().min(0) }),
    ),
  },
  "model.forward": {
    args: z
      .object({ ...model, x: tensorSchema, n: z.number().int().min(1), options: cnnForwardOptionsSchema })
      .strict(),
    result: z.object({
      logProbs: tensorSchema,
      blocks: z
        .object(
          Object.fromEntries(BLOCK_OUTPUTS.map((b) => [b, tensorSchema.optional()])) as Record<
            BlockName,
            z.ZodOptional<typeof tensorSchema>
          >,
        )
        .optional(),
    }),
  },
  "model.backward": {
    args: z.object({ ...model, labels: z.array(z.number()) }).strict(),
    result: z.object({ loss: wireNumber }),
  },
  "model.gradients": { args: z.object(model).strict(), result: tensorsSchema },
  "model.step": {
    args: z
      .object({
        ...model,
        sgd: z.object({ lr: finiteNumber, momentum: finiteNumber, weightDecay: finiteNumber }).strict(),
      })
      .strict(),
    result: nothing,
  },
  "model.parameters": { args: z.object(model).strict(), result: tensorsSchema },
  "model.buffers": { args: z.object(model).strict(), result: tensorsSchema },
  "model.optimizerState": { args: z.object(model).strict(), result: tensorsSchema },
  "model.setOptimizerState": { args: z.object({ ...model, state: tensorsSchema }).strict(), result: nothing },
  "model.dispose": { args: z.object(model).strict(), result: nothing },
  "backend.dispose": { args: z.object({}).strict(), result: nothing },
} as const;
export type ProtocolMethod = keyof typeof PROTOCOL_METHODS;
export const PROTOCOL_METHOD_NAMES = Object.keys(PROTOCOL_METHODS) as [ProtocolMethod, ...ProtocolMethod[]];
export type MethodArgs<M extends ProtocolMethod> = z.input<(typeof PROTOCOL_METHODS)[M]["args"]>;
export type MethodResult<M extends ProtocolMethod> = z.output<(typeof PROTOCOL_METHODS)[M]["result"]>;

// --- messages ------------------------------------------------------------------------------------------------

/** judge → backend, first: the options the backend is created with (e.g. {"precision": "float32"}). */
export const helloMessageSchema = z
  .object({ type: z.literal("hello"), protocol: z.literal(PROTOCOL_VERSION), options: z.record(z.unknown()) })
  .strict();
/** backend → judge, the answer to hello: its manifest. */
export const readyMessageSchema = z.object({
  type: z.literal("ready"),
  protocol: z.literal(PROTOCOL_VERSION),
  manifest: manifestSchema,
});
/** judge → backend: one method call; ids are unique per connection, replies may come in any order. */
export const callMessageSchema = z
  .object({
    type: z.literal("call"),
    id: z.number().int().min(1),
    method: z.enum(PROTOCOL_METHOD_NAMES),
    args: z.record(z.unknown()),
  })
  .strict();
/** backend → judge: the call `id` returned `value` (null for a void method). */
export const resultMessageSchema = z.object({
  type: z.literal("result"),
  id: z.number().int().min(1),
  value: z.unknown(),
});
/** backend → judge: the call `id` failed (id 0: hello failed, e.g. the backend could not be created). */
export const errorMessageSchema = z.object({
  type: z.literal("error"),
  id: z.number().int().min(0),
  error: z.object({ name: z.string(), message: z.string(), stack: z.string().optional() }),
});
export const judgeMessageSchema = z.discriminatedUnion("type", [helloMessageSchema, callMessageSchema]);
export const backendMessageSchema = z.discriminatedUnion("type", [
  readyMessageSchema,
  resultMessageSchema,
  errorMessageSchema,
]);
export type JudgeMessage = z.infer<typeof judgeMessageSchema>;
export type BackendMessage = z.infer<typeof backendMessageSchema>;

// --- frames ----------------------------------------------------------------------------------------------------

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextEncoder();

function tensorBytes(t: FloatArray): Uint8Array {
  // A copy: the caller may reuse its array before a pipe has taken the bytes.
  if (LITTLE_ENDIAN) return new Uint8Array(t.buffer.slice(t.byteOffset, t.byteOffset + t.byteLength));
  const out = new Uint8Array(t.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < t.length; i++) {
    if (t instanceof Float64Array) view.setFloat64(i * 8, t[i]!, true);
    else view.setFloat32(i * 4, t[i]!, true);
  }
  return out;
}

/**
 * A message as frame pieces: the header line, then each tensor's bytes (write them in order). Float32Array and
 * Float64Array anywhere become tensors; other typed arrays become lists of numbers; non-finite numbers `$float`.
 */
export function encodeFrame(message: Readonly<Record<string, unknown>>): Uint8Array[] {
  if ("tensors" in message) throw new ProtocolError(`a message cannot have its own "tensors" field`);
  const tensors: TensorHeader[] = [];
  const payload: Uint8Array[] = [];
  const json = JSON.stringify(message, (_key, value: unknown) => {
    if (value instanceof Float64Array || value instanceof Float32Array) {
      tensors.push({ dtype: value instanceof Float64Array ? "float64" : "float32", length: value.length });
      payload.push(tensorBytes(value));
      return { $tensor: tensors.length - 1 };
    }
    if (ArrayBuffer.isView(value) && !(value instanceof DataView))
      return Array.from(value as unknown as ArrayLike<number>, Number);
    if (typeof value === "number" && !Number.isFinite(value)) return { $float: String(value) };
    return value;
  });
  const header =
    tensors.length === 0
      ? json
      : `${json.slice(0, -1)}${json === "{}" ? "" : ","}"tensors":${JSON.stringify(tensors)}}`;
  return [utf8.encode(`${header}\n`), ...payload];
}

const FLOATS: Readonly<Record<string, number>> = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };

function readTensor(h: TensorHeader, bytes: Uint8Array): FloatArray {
  const out = h.dtype === "float64" ? new Float64Array(h.length) : new Float32Array(h.length);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < h.length; i++)
    out[i] = h.dtype === "float64" ? view.getFloat64(i * 8, true) : view.getFloat32(i * 4, true);
  return out;
}

/** Replace `{"$tensor": k}` and `{"$float": ...}` inside a parsed message. */
function substitute(value: unknown, tensors: readonly FloatArray[]): unknown {
  if (Array.isArray(value)) return value.map((v) => substitute(v, tensors));
  if (value === null || typeof value !== "object") return value;
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === "$tensor") {
    const k = o.$tensor;
    if (typeof k !== "number" || !Number.isInteger(k) || k < 0 || k >= tensors.length)
      throw new ProtocolError(
        `{"$tensor": ${JSON.stringify(k)}} names no announced tensor (${tensors.length} announced)`,
      );
    return tensors[k];
  }
  if (keys.length === 1 && keys[0] === "$float") {
    const f = FLOATS[String(o.$float)];
    if (f === undefined || typeof o.$float !== "string")
      throw new ProtocolError(`{"$float": ${JSON.stringify(o.$float)}}: expected "NaN", "Infinity" or "-Infinity"`);
    return f;
  }
  return Object.fromEntries(keys.map((k) => [k, substitute(o[k], tensors)]));
}

const headerSchema = z.object({ tensors: z.array(tensorHeaderSchema).optional() }).passthrough();

/**
 * Turns a byte stream into messages (tensors substituted, not yet validated against a message schema).
 * Throws ProtocolError on a line that is not a JSON object, a bad tensor list or sizes beyond the limits.
 */
export class FrameDecoder {
  private parts: Uint8Array[] = [];
  private size = 0;
  private scanned = 0;
  private pending:
    | { readonly message: Record<string, unknown>; readonly tensors: readonly TensorHeader[]; readonly bytes: number }
    | undefined;
  private readonly text = new TextDecoder("utf-8", { fatal: true });

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.size;
  }

  push(chunk: Uint8Array): Record<string, unknown>[] {
    if (chunk.length > 0) {
      this.parts.push(chunk);
      this.size += chunk.length;
    }
    const out: Record<string, unknown>[] = [];
    for (;;) {
      if (!this.pending) {
        const nl = this.newlineAt();
        if (nl < 0) {
          if (this.size > MAX_HEADER_BYTES)
            throw new ProtocolError(`a message line longer than ${MAX_HEADER_BYTES} bytes without a newline`);
          return out;
        }
        this.pending = this.header(this.take(nl + 1));
      }
      if (this.size < this.pending.bytes) return out;
      const payload = this.take(this.pending.bytes);
      const tensors: FloatArray[] = [];
      let offset = 0;
      for (const h of this.pending.tensors) {
        const n = h.length * BYTES[h.dtype];
        tensors.push(readTensor(h, payload.subarray(offset, offset + n)));
        offset += n;
      }
      const { tensors: _announced, ...rest } = this.pending.message;
      out.push(substitute(rest, tensors) as Record<string, unknown>);
      this.pending = undefined;
    }
  }

  private header(line: Uint8Array) {
    let text: string;
    try {
      text = this.text.decode(line.subarray(0, line.length - 1));
    } catch {
      throw new ProtocolError("a message line that is not UTF-8");
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ProtocolError(
        `a line that is not a JSON message: ${JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text)}`,
      );
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      throw new ProtocolError(`a line that is not a JSON object: ${text.slice(0, 120)}`);
    const h = headerSchema.safeParse(parsed);
    if (!h.success)
      throw new ProtocolError(
        `bad "tensors" list: ${h.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      );
    const tensors = h.data.tensors ?? [];
    const bytes = tensors.reduce((a, t) => a + t.length * BYTES[t.dtype], 0);
    if (bytes > MAX_PAYLOAD_BYTES)
      throw new ProtocolError(`a message announcing ${bytes} bytes of tensors (limit ${MAX_PAYLOAD_BYTES})`);
    return { message: parsed as Record<string, unknown>, tensors, bytes };
  }

  /** Index (from the start of the buffered bytes) of the first newline, or −1. */
  private newlineAt(): number {
    let base = 0;
    for (const p of this.parts) {
      if (base + p.length > this.scanned) {
        const i = p.indexOf(10, Math.max(0, this.scanned - base));
        if (i >= 0) return base + i;
      }
      base += p.length;
    }
    this.scanned = base;
    return -1;
  }

  /** Remove and return the first n buffered bytes. */
  private take(n: number): Uint8Array {
    this.scanned = 0;
    this.size -= n;
    const first = this.parts[0];
    if (n === 0) return new Uint8Array(0);
    if (first && first.length >= n) {
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const p = this.parts[0]!;
      const k = Math.min(p.length, n - filled);
      out.set(p.subarray(0, k), filled);
      filled += k;
      if (k === p.length) this.parts.shift();
      else this.parts[0] = p.subarray(k);
    }
    return out;
  }
}
