import {
  CNN_BLOCK_RECORDS,
  CNN_LAYERS,
  INPUT_SHAPE,
  dropoutKeeps,
  dropoutRate,
  type BlockName,
  type Shape,
} from "@nnspec/spec";
import type { Arr, ArrayFactory } from "./arrays.ts";
import { ConvScratch, convBackwardRange, convForwardRange, flipKernel, type ConvGeometry } from "./conv-kernels.ts";
import type { ConvPool } from "./conv-pool.ts";

/**
 * The reference CNN's layers. Each owns its parameters, its gradient accumulators and the workspaces for the
 * current batch size (reallocated only when the batch size changes, never per element). Formulas follow
 * PyTorch's CPU kernels where the order of operations is visible at float64 tolerance.
 */
export interface ForwardContext {
  readonly train: boolean;
  readonly dropout: { readonly seed: number; readonly step: number; readonly rates?: readonly number[] } | null;
}

export interface ParamSlot {
  readonly name: string;
  readonly data: Arr;
  /** Gradient of the last backward, accumulated in float64 whatever the storage type. */
  readonly grad: Float64Array;
}

export interface Layer {
  /** torchsummary module type ("Conv2d"), or null for functional steps (ReLU, GAP, log-softmax). */
  readonly moduleType: string | null;
  readonly inShape: Shape;
  readonly outShape: Shape;
  readonly params: readonly ParamSlot[];
  forward(x: Arr, n: number, ctx: ForwardContext): Arr | Promise<Arr>;
  /** Gradient w.r.t. the input (null when `needDx` is false); fills the params' grads. */
  backward(dy: Arr, n: number, needDx: boolean): Arr | null | Promise<Arr | null>;
}

const size = (s: Shape): number => s.reduce((a, b) => a * b, 1);

/**
 * A workspace of `perSample · n` elements, reallocated only when n changes. Shared memory, so the conv worker
 * reads and writes activations in place.
 */
class Workspace {
  private buf: Arr | null = null;
  constructor(
    private readonly f: ArrayFactory,
    private readonly perSample: number,
  ) {}
  get(n: number): Arr {
    const len = this.perSample * n;
    if (!this.buf || this.buf.length !== len) this.buf = this.f.allocShared(len);
    return this.buf;
  }
}

export class Conv2d implements Layer {
  readonly moduleType = "Conv2d";
  readonly outShape: Shape;
  readonly params: readonly ParamSlot[];
  private readonly g: ConvGeometry;
  private readonly weight: Arr;
  private readonly bias: Arr;
  private readonly gW: Float64Array;
  private readonly gB: Float64Array;
  private readonly out: Workspace;
  private readonly dx: Workspace;
  private readonly wflip: Arr;
  private readonly scratch: ConvScratch;
  private input: Arr | null = null;

  constructor(
    f: ArrayFactory,
    readonly name: string,
    readonly inShape: Shape,
    outChannels: number,
    private readonly pool: ConvPool | null,
  ) {
    const [cin, H, W] = inShape as [number, number, number];
    this.g = { cin, cout: outChannels, H, W };
    this.outShape = [outChannels, H, W];
    this.weight = f.alloc(outChannels * cin * 9);
    this.bias = f.alloc(outChannels);
    this.gW = new Float64Array(this.weight.length);
    this.gB = new Float64Array(outChannels);
    this.params = [
      { name: `${name}.weight`, data: this.weight, grad: this.gW },
      { name: `${name}.bias`, data: this.bias, grad: this.gB },
    ];
    this.out = new Workspace(f, size(this.outShape));
    this.dx = new Workspace(f, size(inShape));
    this.wflip = f.alloc(this.weight.length);
    this.scratch = new ConvScratch(f.alloc);
  }

  /** Images [0, h) stay on this thread, [h, n) go to the worker (when there is one and n ≥ 2). */
  private split(n: number): number {
    return this.pool && n >= 2 ? Math.ceil(n / 2) : n;
  }

  async forward(x: Arr, n: number): Promise<Arr> {
    const out = this.out.get(n);
    const h = this.split(n);
    const remote =
      h < n
        ? this.pool!.run({ op: "forward", g: this.g, x, weight: this.weight, bias: this.bias, out, i0: h, i1: n })
        : null;
    convForwardRange(this.g, x, this.weight, this.bias, out, 0, h, this.scratch);
    await remote;
    this.input = x;
    return out;
  }

  async backward(dy: Arr, n: number, needDx: boolean): Promise<Arr | null> {
    const x = this.input;
    if (!x) throw new Error(`${this.name}: backward before forward`);
    const { gW, gB } = this;
    gW.fill(0);
    gB.fill(0);
    if (needDx) flipKernel(this.g, this.weight, this.wflip);
    const wflip = needDx ? this.wflip : null;
    const dx = needDx ? this.dx.get(n) : null;
    const h = this.split(n);
    const remote = h < n ? this.pool!.run({ op: "backward", g: this.g, x, dy, wflip, dx, i0: h, i1: n }) : null;
    convBackwardRange(this.g, x, dy, wflip, dx, gW, gB, 0, h, this.scratch);
    const r = await remote;
    if (r?.gW && r.gB) {
      for (let k = 0; k < gW.length; k++) gW[k] = gW[k]! + r.gW[k]!;
      for (let k = 0; k < gB.length; k++) gB[k] = gB[k]! + r.gB[k]!;
    }
    return dx;
  }
}

export class BatchNorm2d implements Layer {
  readonly moduleType = "BatchNorm2d";
  readonly outShape: Shape;
  readonly params: readonly ParamSlot[];
  readonly runningMean: Arr;
  readonly runningVar: Arr;
  numBatchesTracked = 0;
  private readonly C: number;
  private readonly HW: number;
  private readonly gamma: Arr;
  private readonly beta: Arr;
  private readonly gG: Float64Array;
  private readonly gBeta: Float64Array;
  private readonly mean: Float64Array;
  private readonly invstd: Float64Array;
  private readonly out: Workspace;
  private readonly dx: Workspace;
  private input: Arr | null = null;

  constructor(
    f: ArrayFactory,
    readonly name: string,
    readonly inShape: Shape,
    private readonly eps: number,
    private readonly momentum: number,
  ) {
    this.C = inShape[0]!;
    this.HW = inShape[1]! * inShape[2]!;
    this.outShape = [...inShape];
    this.gamma = f.alloc(this.C);
    this.beta = f.alloc(this.C);
    this.gG = new Float64Array(this.C);
    this.gBeta = new Float64Array(this.C);
    this.params = [
      { name: `${name}.weight`, data: this.gamma, grad: this.gG },
      { name: `${name}.bias`, data: this.beta, grad: this.gBeta },
    ];
    this.runningMean = f.alloc(this.C);
    this.runningVar = f.alloc(this.C).fill(1);
    this.mean = new Float64Array(this.C);
    this.invstd = new Float64Array(this.C);
    this.out = new Workspace(f, this.C * this.HW);
    this.dx = new Workspace(f, this.C * this.HW);
  }

  forward(x: Arr, n: number, ctx: ForwardContext): Arr {
    const { C, HW, eps } = this;
    const out = this.out.get(n);
    const cnt = n * HW;
    for (let c = 0; c < C; c++) {
      let mean: number, invstd: number;
      if (ctx.train) {
        let s = 0;
        for (let i = 0; i < n; i++) {
          const o = (i * C + c) * HW;
          for (let p = 0; p < HW; p++) s += x[o + p]!;
        }
        mean = s / cnt;
        let v = 0;
        for (let i = 0; i < n; i++) {
          const o = (i * C + c) * HW;
          for (let p = 0; p < HW; p++) {
            const d = x[o + p]! - mean;
            v += d * d;
          }
        }
        invstd = 1 / Math.sqrt(v / cnt + eps);
        this.mean[c] = mean;
        this.invstd[c] = invstd;
        // Running variance takes the unbiased estimate, as torch.nn.BatchNorm2d does.
        const m = this.momentum;
        this.runningMean[c] = m * mean + (1 - m) * this.runningMean[c]!;
        this.runningVar[c] = m * (cnt > 1 ? v / (cnt - 1) : NaN) + (1 - m) * this.runningVar[c]!;
      } else {
        mean = this.runningMean[c]!;
        invstd = 1 / Math.sqrt(this.runningVar[c]! + eps);
      }
      // PyTorch's CPU kernel folds normalisation and affine into one multiply-add per element.
      const alpha = invstd * this.gamma[c]!;
      const shift = this.beta[c]! - mean * alpha;
      for (let i = 0; i < n; i++) {
        const o = (i * C + c) * HW;
        for (let p = 0; p < HW; p++) out[o + p] = x[o + p]! * alpha + shift;
      }
    }
    if (ctx.train) {
      this.numBatchesTracked += 1;
      this.input = x;
    }
    return out;
  }

  backward(dy: Arr, n: number, needDx: boolean): Arr | null {
    const { C, HW } = this;
    const x = this.input;
    if (!x) throw new Error(`${this.name}: backward before a train-mode forward`);
    const dx = needDx ? this.dx.get(n) : null;
    const cnt = n * HW;
    for (let c = 0; c < C; c++) {
      const mean = this.mean[c]!,
        invstd = this.invstd[c]!;
      let sum = 0,
        dotp = 0;
      for (let i = 0; i < n; i++) {
        const o = (i * C + c) * HW;
        for (let p = 0; p < HW; p++) {
          const g = dy[o + p]!;
          sum += g;
          dotp += (x[o + p]! - mean) * g;
        }
      }
      this.gG[c] = dotp * invstd;
      this.gBeta[c] = sum;
      if (!dx) continue;
      const k = (dotp * invstd * invstd) / cnt;
      const gradMean = sum / cnt;
      const scale = invstd * this.gamma[c]!;
      for (let i = 0; i < n; i++) {
        const o = (i * C + c) * HW;
        for (let p = 0; p < HW; p++) dx[o + p] = (dy[o + p]! - gradMean - (x[o + p]! - mean) * k) * scale;
      }
    }
    return dx;
  }
}

export class Relu implements Layer {
  readonly moduleType = null;
  readonly outShape: Shape;
  readonly params: readonly ParamSlot[] = [];
  private readonly out: Workspace;
  private readonly dx: Workspace;
  private output: Arr | null = null;

  constructor(
    f: ArrayFactory,
    readonly inShape: Shape,
  ) {
    this.outShape = [...inShape];
    this.out = new Workspace(f, size(inShape));
    this.dx = new Workspace(f, size(inShape));
  }

  forward(x: Arr, n: number): Arr {
    const out = this.out.get(n);
    for (let i = 0; i < out.length; i++) {
      const v = x[i]!;
      out[i] = Math.max(v, 0);
    }
    this.output = out;
    return out;
  }

  backward(dy: Arr, n: number): Arr {
    const y = this.output!;
    const dx = this.dx.get(n);
    for (let i = 0; i < dx.length; i++) dx[i] = y[i]! > 0 ? dy[i]! : 0;
    return dx;
  }
}

export class MaxPool2d implements Layer {
  readonly moduleType = "MaxPool2d";
  readonly outShape: Shape;
  readonly params: readonly ParamSlot[] = [];
  private readonly C: number;
  private readonly H: number;
  private readonly W: number;
  private readonly out: Workspace;
  private readonly dx: Workspace;
  private argmax = new Int32Array(0);

  constructor(
    f: ArrayFactory,
    readonly name: string,
    readonly inShape: Shape,
  ) {
    [this.C, this.H, this.W] = inShape as [number, number, number];
    this.outShape = [this.C, Math.floor(this.H / 2), Math.floor(this.W / 2)];
    this.out = new Workspace(f, size(this.outShape));
    this.dx = new Workspace(f, size(inShape));
  }

  forward(x: Arr, n: number): Arr {
    const { H, W } = this;
    const Ho = this.outShape[1]!,
      Wo = this.outShape[2]!;
    const out = this.out.get(n);
    if (this.argmax.length !== out.length) this.argmax = new Int32Array(out.length);
    const am = this.argmax;
    let o = 0;
    for (let plane = 0; plane < n * this.C; plane++) {
      const base = plane * H * W;
      for (let y = 0; y < Ho; y++) {
        for (let xo = 0; xo < Wo; xo++) {
          // Scan the window row-major and move only on a strictly larger value (or NaN): the first maximum wins, as in PyTorch.
          let best = base + 2 * y * W + 2 * xo,
            bv = x[best]!;
          for (let ky = 0; ky < 2; ky++)
            for (let kx = 0; kx < 2; kx++) {
              const idx = base + (2 * y + ky) * W + 2 * xo + kx,
                v = x[idx]!;
              if (v > bv || Number.isNaN(v)) {
                bv = v;
                best = idx;
              }
            }
          out[o] = bv;
          am[o++] = best;
        }
      }
    }
    return out;
  }

  backward(dy: Arr, n: number): Arr {
    const dx = this.dx.get(n);
    dx.fill(0);
    const am = this.argmax;
    for (let o = 0; o < dy.length; o++) dx[am[o]!] = dx[am[o]!]! + dy[o]!;
    return dx;
  }
}

export class Dropout implements Layer {
  readonly moduleType = "Dropout";
  readonly outShape: Shape;
  readonly params: readonly ParamSlot[] = [];
  private readonly out: Workspace;
  private readonly dx: Workspace;
  private keep = new Uint8Array(0);
  private scale = 1;
  private active = false;

  constructor(
    f: ArrayFactory,
    readonly name: string,
    readonly inShape: Shape,
    readonly p: number,
    readonly index: number,
  ) {
    this.outShape = [...inShape];
    this.out = new Workspace(f, size(inShape));
    this.dx = new Workspace(f, size(inShape));
  }

  forward(x: Arr, n: number, ctx: ForwardContext): Arr {
    this.active = ctx.train && ctx.dropout !== null;
    if (!this.active || !ctx.dropout) return x;
    const { seed, step } = ctx.dropout;
    // The forward's rate (a recipe may set it), else the architecture's p; backward scales with the same.
    const p = dropoutRate(ctx.dropout, this.index);
    const out = this.out.get(n);
    if (this.keep.length !== out.length) this.keep = new Uint8Array(out.length);
    // Inverted dropout with the contract's hash mask: kept elements times 1/(1−p), as torch scales its noise.
    const scale = 1 / (1 - p);
    this.scale = scale;
    for (let i = 0; i < out.length; i++) {
      const k = dropoutKeeps(seed, this.index, step, i, p);
      this.keep[i] = k ? 1 : 0;
      out[i] = k ? x[i]! * scale : 0;
    }
    return out;
  }

  backward(dy: Arr, n: number): Arr {
    if (!this.active) return dy;
    const dx = this.dx.get(n);
    const scale = this.scale;
    for (let i = 0; i < dx.length; i++) dx[i] = this.keep[i] ? dy[i]! * scale : 0;
    return dx;
  }
}

export class GlobalAvgPool implements Layer {
  readonly moduleType = null;
  readonly outShape: Shape;
  readonly params: readonly ParamSlot[] = [];
  private readonly C: number;
  private readonly HW: number;
  private readonly out: Workspace;
  private readonly dx: Workspace;

  constructor(
    f: ArrayFactory,
    readonly inShape: Shape,
  ) {
    this.C = inShape[0]!;
    this.HW = inShape[1]! * inShape[2]!;
    this.outShape = [this.C];
    this.out = new Workspace(f, this.C);
    this.dx = new Workspace(f, size(inShape));
  }

  forward(x: Arr, n: number): Arr {
    const out = this.out.get(n),
      HW = this.HW;
    for (let j = 0; j < n * this.C; j++) {
      let s = 0;
      for (let p = 0; p < HW; p++) s += x[j * HW + p]!;
      out[j] = s / HW;
    }
    return out;
  }

  backward(dy: Arr, n: number): Arr {
    const dx = this.dx.get(n),
      HW = this.HW;
    for (let j = 0; j < n * this.C; j++) {
      const g = dy[j]! / HW;
      for (let p = 0; p < HW; p++) dx[j * HW + p] = g;
    }
    return dx;
  }
}

export class Linear implements Layer {
  readonly moduleType = "Linear";
  readonly outShape: Shape;
  readonly params: readonly ParamSlot[];
  private readonly weight: Arr;
  private readonly bias: Arr;
  private readonly gW: Float64Array;
  private readonly gB: Float64Array;
  private readonly out: Workspace;
  private readonly dx: Workspace;
  private input: Arr | null = null;

  constructor(
    f: ArrayFactory,
    readonly name: string,
    readonly inShape: Shape,
    readonly inFeatures: number,
    readonly outFeatures: number,
  ) {
    if (size(inShape) !== inFeatures)
      throw new Error(`${name}: input has ${size(inShape)} features, expected ${inFeatures}`);
    this.outShape = [outFeatures];
    this.weight = f.alloc(outFeatures * inFeatures);
    this.bias = f.alloc(outFeatures);
    this.gW = new Float64Array(this.weight.length);
    this.gB = new Float64Array(outFeatures);
    this.params = [
      { name: `${name}.weight`, data: this.weight, grad: this.gW },
      { name: `${name}.bias`, data: this.bias, grad: this.gB },
    ];
    this.out = new Workspace(f, outFeatures);
    this.dx = new Workspace(f, inFeatures);
  }

  forward(x: Arr, n: number): Arr {
    const out = this.out.get(n),
      I = this.inFeatures,
      O = this.outFeatures;
    for (let i = 0; i < n; i++)
      for (let o = 0; o < O; o++) {
        let s = 0;
        for (let k = 0; k < I; k++) s += x[i * I + k]! * this.weight[o * I + k]!;
        out[i * O + o] = this.bias[o]! + s;
      }
    this.input = x;
    return out;
  }

  backward(dy: Arr, n: number, needDx: boolean): Arr | null {
    const x = this.input!,
      I = this.inFeatures,
      O = this.outFeatures;
    this.gW.fill(0);
    this.gB.fill(0);
    for (let i = 0; i < n; i++)
      for (let o = 0; o < O; o++) {
        const g = dy[i * O + o]!;
        this.gB[o] = this.gB[o]! + g;
        for (let k = 0; k < I; k++) this.gW[o * I + k] = this.gW[o * I + k]! + g * x[i * I + k]!;
      }
    if (!needDx) return null;
    const dx = this.dx.get(n);
    for (let i = 0; i < n; i++)
      for (let k = 0; k < I; k++) {
        let s = 0;
        for (let o = 0; o < O; o++) s += dy[i * O + o]! * this.weight[o * I + k]!;
        dx[i * I + k] = s;
      }
    return dx;
  }
}

export class LogSoftmax implements Layer {
  readonly moduleType = null;
  readonly outShape: Shape;
  readonly params: readonly ParamSlot[] = [];
  private readonly C: number;
  private readonly out: Workspace;
  private readonly dx: Workspace;
  private output: Arr | null = null;

  constructor(
    f: ArrayFactory,
    readonly inShape: Shape,
  ) {
    this.C = size(inShape);
    this.outShape = [this.C];
    this.out = new Workspace(f, this.C);
    this.dx = new Workspace(f, this.C);
  }

  forward(x: Arr, n: number): Arr {
    const out = this.out.get(n),
      C = this.C;
    for (let i = 0; i < n; i++) {
      const o = i * C;
      let max = -Infinity;
      for (let j = 0; j < C; j++) max = Math.max(max, x[o + j]!);
      let s = 0;
      for (let j = 0; j < C; j++) s += Math.exp(x[o + j]! - max);
      const lse = Math.log(s);
      for (let j = 0; j < C; j++) out[o + j] = x[o + j]! - max - lse;
    }
    this.output = out;
    return out;
  }

  backward(dy: Arr, n: number): Arr {
    const y = this.output!,
      dx = this.dx.get(n),
      C = this.C;
    for (let i = 0; i < n; i++) {
      const o = i * C;
      let s = 0;
      for (let j = 0; j < C; j++) s += dy[o + j]!;
      for (let j = 0; j < C; j++) dx[o + j] = dy[o + j]! - Math.exp(y[o + j]!) * s;
    }
    return dx;
  }
}

export interface Built {
  readonly layer: Layer;
  /** Block name this layer's output is reported under when recording (spec's CNN_BLOCK_RECORDS). */
  readonly records: BlockName | null;
}

/** Layer objects from the architecture data, each taking the previous one's output shape. */
export function buildLayers(f: ArrayFactory, pool: ConvPool | null): Built[] {
  let shape: Shape = [...INPUT_SHAPE];
  return CNN_LAYERS.map((spec, i) => {
    let layer: Layer;
    switch (spec.type) {
      case "conv2d":
        if (shape[0] !== spec.inChannels)
          throw new Error(`${spec.name}: input has ${shape[0]} channels, expected ${spec.inChannels}`);
        layer = new Conv2d(f, spec.name, shape, spec.outChannels, pool);
        break;
      case "batchnorm2d":
        layer = new BatchNorm2d(f, spec.name, shape, spec.eps, spec.momentum);
        break;
      case "relu":
        layer = new Relu(f, shape);
        break;
      case "maxpool2d":
        layer = new MaxPool2d(f, spec.name, shape);
        break;
      case "dropout":
        layer = new Dropout(f, spec.name, shape, spec.p, spec.index);
        break;
      case "gap":
        layer = new GlobalAvgPool(f, shape);
        break;
      case "linear":
        layer = new Linear(f, spec.name, shape, spec.inFeatures, spec.outFeatures);
        break;
      case "logsoftmax":
        layer = new LogSoftmax(f, shape);
        break;
    }
    shape = layer.outShape;
    return { layer, records: CNN_BLOCK_RECORDS[i] ?? null };
  });
}
