import {
  CNN_BLOCK_RECORDS,
  CNN_LAYERS,
  INPUT_SHAPE,
  dropoutKeeps,
  dropoutRate,
  type BlockName,
  type CnnTensors,
  type Shape,
} from "@nnspec/spec";
import type { GpuRuntime, Scope, Tensor } from "../runtime.ts";
import * as K from "./kernels.ts";

/**
 * The CNN's layers over gpu.js kernels. Tensors stay in gpu.js (textures on WebGL) from the input upload to
 * the loss; a layer keeps what its backward needs in the forward scope and puts everything its backward
 * makes into the backward scope, so the model frees a whole pass at once.
 */
export interface Pass {
  readonly rt: GpuRuntime;
  readonly scope: Scope;
  readonly n: number;
}
export interface ForwardPass extends Pass {
  readonly train: boolean;
  /** The forward's dropout options (seed, step, optional per-layer rates); null = dropout off. */
  readonly dropout: { readonly seed: number; readonly step: number; readonly rates?: readonly number[] } | null;
}

/** Parameters stored as one tensor (a conv weight, or a BN's [gamma | beta]) with their state_dict names. */
export class ParamGroup {
  grad: Tensor | null = null;
  momentum: Tensor | null = null;
  constructor(
    public value: Tensor,
    readonly size: number,
    readonly slots: ReadonlyArray<{ readonly name: string; readonly offset: number; readonly size: number }>,
  ) {}
}

export interface Layer {
  /** torchsummary module type, or null for functional steps (ReLU is fused into BatchNorm here; GAP, log-softmax). */
  readonly moduleType: string | null;
  readonly outShape: Shape;
  readonly groups: readonly ParamGroup[];
  forward(x: Tensor, pass: ForwardPass): Promise<Tensor>;
  /** Gradient w.r.t. the layer input (null when `needDx` is false); sets the groups' `grad`. */
  backward(dy: Tensor, pass: Pass, needDx: boolean): Promise<Tensor | null>;
}

const size = (s: Shape): number => s.reduce((a, b) => a * b, 1);

export class Conv2d implements Layer {
  readonly moduleType = "Conv2d";
  readonly outShape: Shape;
  readonly groups: readonly ParamGroup[];
  readonly weight: ParamGroup;
  readonly bias: ParamGroup;
  private readonly geo: { Cin: number; Cout: number; H: number; W: number };
  /** The zero-padded input of the last forward (the filter gradient reads it). */
  private input: Tensor | null = null;

  constructor(
    readonly name: string,
    inShape: Shape,
    cout: number,
    weight: Tensor,
    bias: Tensor,
  ) {
    const [cin, H, W] = inShape as [number, number, number];
    this.geo = { Cin: cin, Cout: cout, H, W };
    this.outShape = [cout, H, W];
    this.weight = new ParamGroup(weight, cout * cin * 9, [{ name: `${name}.weight`, offset: 0, size: cout * cin * 9 }]);
    this.bias = new ParamGroup(bias, cout, [{ name: `${name}.bias`, offset: 0, size: cout }]);
    this.groups = [this.weight, this.bias];
  }

  private padded(rt: GpuRuntime, t: Tensor, n: number, channels: number): Promise<Tensor> {
    const { H, W } = this.geo;
    return rt.kernel("pad", K.pad, n * channels * (H + 2) * (W + 2), { H, W })(t);
  }

  async forward(x: Tensor, { rt, scope, n, train }: ForwardPass): Promise<Tensor> {
    const xp = scope.keep(await this.padded(rt, x, n, this.geo.Cin));
    this.input = train ? xp : null;
    const out = rt.kernel("convForward", K.convForward, n * size(this.outShape), this.geo);
    return scope.keep(await out(xp, this.weight.value, this.bias.value));
  }

  async backward(dy: Tensor, { rt, scope, n }: Pass, needDx: boolean): Promise<Tensor | null> {
    const xp = this.input;
    if (!xp) throw new Error(`${this.name}: backward before forward`);
    const { Cin, Cout, H, W } = this.geo;
    const filterGrad =
      W % 7 === 0
        ? rt.kernel("convFilterGradPart", K.convFilterGradPart, n * Cout * Cin * 9, this.geo)
        : rt.kernel("convFilterGradPartAnyWidth", K.convFilterGradPartAnyWidth, n * Cout * Cin * 9, this.geo);
    const wParts = scope.keep(await filterGrad(dy, xp));
    this.weight.grad = scope.keep(
      await rt.kernel("batchSum", K.batchSum, Cout * Cin * 9, { N: n, C: Cout * Cin * 9 })(wParts, 1),
    );
    const bParts = scope.keep(await rt.kernel("planeSum", K.planeSum, n * Cout, { R: H, L: W })(dy, 1));
    this.bias.grad = scope.keep(await rt.kernel("batchSum", K.batchSum, Cout, { N: n, C: Cout })(bParts, 1));
    if (!needDx) return null;
    const dyp = scope.keep(await this.padded(rt, dy, n, Cout));
    return scope.keep(
      await rt.kernel("convInputGrad", K.convInputGrad, n * Cin * H * W, this.geo)(dyp, this.weight.value),
    );
  }
}

/** BatchNorm2d followed by ReLU, as one layer: the block outputs the contract records are post-ReLU anyway. */
export class BatchNorm2dRelu implements Layer {
  readonly moduleType = "BatchNorm2d";
  readonly outShape: Shape;
  readonly affine: ParamGroup;
  readonly groups: readonly ParamGroup[];
  numBatchesTracked = 0;
  private readonly C: number;
  private readonly P: number;
  /** Plane rows × row length, for the row-wise sums. */
  private readonly rows: { R: number; L: number };
  /** What backward needs: the input, the block output (ReLU mask) and the batch statistics S. */
  private saved: { x: Tensor; a: Tensor; stats: Tensor } | null = null;

  /** `running`: the [running_mean | running_var] tensor (2C). */
  constructor(
    readonly name: string,
    inShape: Shape,
    private readonly eps: number,
    private readonly momentum: number,
    affine: Tensor,
    public running: Tensor,
  ) {
    this.C = inShape[0]!;
    this.P = inShape[1]! * inShape[2]!;
    this.rows = { R: inShape[1]!, L: inShape[2]! };
    this.outShape = [...inShape];
    this.affine = new ParamGroup(affine, 2 * this.C, [
      { name: `${name}.weight`, offset: 0, size: this.C },
      { name: `${name}.bias`, offset: this.C, size: this.C },
    ]);
    this.groups = [this.affine];
  }

  async forward(x: Tensor, { rt, scope, n, train }: ForwardPass): Promise<Tensor> {
    const { C, P, eps } = this;
    if (!train) {
      this.saved = null;
      return scope.keep(
        await rt.kernel("bnReluEval", K.bnReluEval, n * C * P, { C, P, eps })(x, this.running, this.affine.value),
      );
    }
    const count = n * P;
    const sums = scope.keep(await rt.kernel("planeSum", K.planeSum, n * C, this.rows)(x, 1));
    const mean = scope.keep(await rt.kernel("batchSum", K.batchSum, C, { N: n, C })(sums, 1 / count));
    const devParts = scope.keep(
      await rt.kernel("planeDeviations", K.planeDeviations, n * 2 * C, { C, ...this.rows })(x, mean),
    );
    const dev = scope.keep(await rt.kernel("batchSum", K.batchSum, 2 * C, { N: n, C: 2 * C })(devParts, 1 / count));
    const stats = scope.keep(await rt.kernel("bnStats", K.bnStats, 3 * C, { C })(mean, dev));
    const running = await rt.kernel("bnRunningUpdate", K.bnRunningUpdate, 2 * C, { C, momentum: this.momentum })(
      stats,
      this.running,
      count,
    );
    rt.release(this.running);
    this.running = running;
    this.numBatchesTracked += 1;
    const a = scope.keep(
      await rt.kernel("bnReluTrain", K.bnReluTrain, n * C * P, { C, P, eps })(x, stats, this.affine.value),
    );
    this.saved = { x, a, stats };
    return a;
  }

  async backward(g: Tensor, { rt, scope, n }: Pass, needDx: boolean): Promise<Tensor | null> {
    const s = this.saved;
    if (!s) throw new Error(`${this.name}: backward before a train-mode forward`);
    const { C, P, eps } = this;
    const parts = scope.keep(
      await rt.kernel("bnBackwardPart", K.bnBackwardPart, n * 2 * C, { C, ...this.rows })(g, s.a, s.x, s.stats),
    );
    const red = scope.keep(await rt.kernel("batchSum", K.batchSum, 2 * C, { N: n, C: 2 * C })(parts, 1));
    this.affine.grad = scope.keep(await rt.kernel("bnParamGrad", K.bnParamGrad, 2 * C, { C, eps })(red, s.stats));
    if (!needDx) return null;
    return scope.keep(
      await rt.kernel("bnInputGrad", K.bnInputGrad, n * C * P, { C, P, eps })(
        g,
        s.a,
        s.x,
        s.stats,
        red,
        this.affine.value,
        n * P,
      ),
    );
  }
}

export class MaxPool2d implements Layer {
  readonly moduleType = "MaxPool2d";
  readonly outShape: Shape;
  readonly groups: readonly ParamGroup[] = [];
  private readonly geo: { H: number; W: number };
  private input: Tensor | null = null;

  constructor(
    readonly name: string,
    private readonly inShape: Shape,
  ) {
    const [C, H, W] = inShape as [number, number, number];
    this.geo = { H, W };
    this.outShape = [C, Math.floor(H / 2), Math.floor(W / 2)];
  }

  async forward(x: Tensor, { rt, scope, n, train }: ForwardPass): Promise<Tensor> {
    this.input = train ? x : null;
    return scope.keep(await rt.kernel("maxPoolForward", K.maxPoolForward, n * size(this.outShape), this.geo)(x));
  }

  async backward(dy: Tensor, { rt, scope, n }: Pass): Promise<Tensor> {
    if (!this.input) throw new Error(`${this.name}: backward before forward`);
    return scope.keep(
      await rt.kernel("maxPoolBackward", K.maxPoolBackward, n * size(this.inShape), this.geo)(dy, this.input),
    );
  }
}

/**
 * Inverted dropout with the contract's mask rule (spec/src/rng.ts). The keep/drop decision is the shared
 * 32-bit integer hash, evaluated on the host and uploaded as a 0 or 1/(1−p) mask (gpu.js's GL targets have
 * no exact 32-bit integer arithmetic); applying it forward and backward are kernels.
 */
export class Dropout implements Layer {
  readonly moduleType = "Dropout";
  readonly outShape: Shape;
  readonly groups: readonly ParamGroup[] = [];
  private mask: Tensor | null = null;

  constructor(
    readonly name: string,
    inShape: Shape,
    /** Index among the dropout layers (DROPOUT_LAYERS order): the mask rule's layer and the rate's position. */
    readonly index: number,
  ) {
    this.outShape = [...inShape];
  }

  async forward(x: Tensor, { rt, scope, n, train, dropout }: ForwardPass): Promise<Tensor> {
    this.mask = null;
    if (!train || !dropout) return x;
    // The drop rate is per forward (a recipe may set it); the mask holds the scale, so backward needs no rate.
    const p = dropoutRate(dropout, this.index);
    const count = n * size(this.outShape);
    const scale = 1 / (1 - p);
    const m = new Float32Array(count);
    for (let i = 0; i < count; i++) m[i] = dropoutKeeps(dropout.seed, this.index, dropout.step, i, p) ? scale : 0;
    this.mask = scope.keep(await rt.upload(m));
    return scope.keep(await rt.kernel("multiply", K.multiply, count, {})(x, this.mask));
  }

  async backward(dy: Tensor, { rt, scope, n }: Pass): Promise<Tensor> {
    if (!this.mask) return dy;
    return scope.keep(await rt.kernel("multiply", K.multiply, n * size(this.outShape), {})(dy, this.mask));
  }
}

export class GlobalAvgPool implements Layer {
  readonly moduleType = null;
  readonly outShape: Shape;
  readonly groups: readonly ParamGroup[] = [];
  private readonly P: number;
  private readonly rows: { R: number; L: number };

  constructor(private readonly inShape: Shape) {
    this.P = inShape[1]! * inShape[2]!;
    this.rows = { R: inShape[1]!, L: inShape[2]! };
    this.outShape = [inShape[0]!];
  }

  async forward(x: Tensor, { rt, scope, n }: ForwardPass): Promise<Tensor> {
    return scope.keep(await rt.kernel("planeSum", K.planeSum, n * this.outShape[0]!, this.rows)(x, 1 / this.P));
  }

  async backward(dy: Tensor, { rt, scope, n }: Pass): Promise<Tensor> {
    return scope.keep(await rt.kernel("gapBackward", K.gapBackward, n * size(this.inShape), { P: this.P })(dy));
  }
}

export class Linear implements Layer {
  readonly moduleType = "Linear";
  readonly outShape: Shape;
  readonly weight: ParamGroup;
  readonly bias: ParamGroup;
  readonly groups: readonly ParamGroup[];
  private readonly dims: { I: number; O: number };
  private input: Tensor | null = null;

  constructor(
    readonly name: string,
    inShape: Shape,
    inFeatures: number,
    outFeatures: number,
    weight: Tensor,
    bias: Tensor,
  ) {
    if (size(inShape) !== inFeatures)
      throw new Error(`${name}: input has ${size(inShape)} features, expected ${inFeatures}`);
    this.dims = { I: inFeatures, O: outFeatures };
    this.outShape = [outFeatures];
    this.weight = new ParamGroup(weight, outFeatures * inFeatures, [
      { name: `${name}.weight`, offset: 0, size: outFeatures * inFeatures },
    ]);
    this.bias = new ParamGroup(bias, outFeatures, [{ name: `${name}.bias`, offset: 0, size: outFeatures }]);
    this.groups = [this.weight, this.bias];
  }

  async forward(x: Tensor, { rt, scope, n, train }: ForwardPass): Promise<Tensor> {
    this.input = train ? x : null;
    return scope.keep(
      await rt.kernel(
        "linearForward",
        K.linearForward,
        n * this.dims.O,
        this.dims,
      )(x, this.weight.value, this.bias.value),
    );
  }

  async backward(dy: Tensor, { rt, scope, n }: Pass, needDx: boolean): Promise<Tensor | null> {
    const x = this.input;
    if (!x) throw new Error(`${this.name}: backward before forward`);
    const { I, O } = this.dims;
    this.weight.grad = scope.keep(
      await rt.kernel("linearWeightGrad", K.linearWeightGrad, O * I, { N: n, I, O })(dy, x),
    );
    this.bias.grad = scope.keep(await rt.kernel("batchSum", K.batchSum, O, { N: n, C: O })(dy, 1));
    if (!needDx) return null;
    return scope.keep(await rt.kernel("linearInputGrad", K.linearInputGrad, n * I, this.dims)(dy, this.weight.value));
  }
}

/** Log-softmax; its backward is fused with the NLL loss in the model (one kernel from log-probs and labels). */
export class LogSoftmax implements Layer {
  readonly moduleType = null;
  readonly outShape: Shape;
  readonly groups: readonly ParamGroup[] = [];

  constructor(inShape: Shape) {
    this.outShape = [size(inShape)];
  }

  async forward(x: Tensor, { rt, scope, n }: ForwardPass): Promise<Tensor> {
    const Kc = this.outShape[0]!;
    return scope.keep(await rt.kernel("logSoftmax", K.logSoftmax, n * Kc, { K: Kc })(x));
  }

  async backward(): Promise<Tensor> {
    throw new Error("log-softmax backward runs fused with the NLL loss (model.backward)");
  }
}

export interface Built {
  readonly layer: Layer;
  /** Block name this layer's output is reported under when recording (spec's CNN_BLOCK_RECORDS). */
  readonly records: BlockName | null;
}

/** What CnnOps.create receives. */
export type Init = { readonly parameters: CnnTensors; readonly buffers?: CnnTensors };

function tensorOf(init: Init, name: string, want: number): Float32Array {
  const src = init.parameters[name];
  if (!src) throw new Error(`gpujs CNN: parameters.${name} is missing`);
  if (src.length !== want) throw new Error(`gpujs CNN: parameters.${name} has ${src.length} values, expected ${want}`);
  return Float32Array.from(src);
}

function bufferOf(init: Init, name: string, want: number): Float32Array | null {
  if (!init.buffers) return null;
  const src = init.buffers[name];
  if (!src) throw new Error(`gpujs CNN: buffers.${name} is missing`);
  if (src.length !== want) throw new Error(`gpujs CNN: buffers.${name} has ${src.length} values, expected ${want}`);
  return Float32Array.from(src);
}

const concat = (a: Float32Array, b: Float32Array): Float32Array => {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

/** Layers from the architecture data (BatchNorm + the ReLU after it become one layer), parameters uploaded. */
export async function buildLayers(rt: GpuRuntime, init: Init): Promise<Built[]> {
  let shape: Shape = [...INPUT_SHAPE];
  const built: Built[] = [];
  for (let li = 0; li < CNN_LAYERS.length; li++) {
    const spec = CNN_LAYERS[li]!;
    let layer: Layer;
    switch (spec.type) {
      case "conv2d": {
        if (shape[0] !== spec.inChannels)
          throw new Error(`${spec.name}: input has ${shape[0]} channels, expected ${spec.inChannels}`);
        const w = tensorOf(init, `${spec.name}.weight`, spec.outChannels * spec.inChannels * 9);
        const b = tensorOf(init, `${spec.name}.bias`, spec.outChannels);
        layer = new Conv2d(spec.name, shape, spec.outChannels, await rt.upload(w), await rt.upload(b));
        break;
      }
      case "batchnorm2d": {
        if (CNN_LAYERS[li + 1]?.type !== "relu")
          throw new Error(`${spec.name}: the gpujs backend fuses BatchNorm with the ReLU after it, but none follows`);
        li++; // the ReLU is part of this layer
        const C = spec.channels;
        const affine = concat(tensorOf(init, `${spec.name}.weight`, C), tensorOf(init, `${spec.name}.bias`, C));
        const rm = bufferOf(init, `${spec.name}.running_mean`, C) ?? new Float32Array(C);
        const rv = bufferOf(init, `${spec.name}.running_var`, C) ?? new Float32Array(C).fill(1);
        const bn = new BatchNorm2dRelu(
          spec.name,
          shape,
          spec.eps,
          spec.momentum,
          await rt.upload(affine),
          await rt.upload(concat(rm, rv)),
        );
        bn.numBatchesTracked = bufferOf(init, `${spec.name}.num_batches_tracked`, 1)?.[0] ?? 0;
        layer = bn;
        break;
      }
      case "relu":
        throw new Error("gpujs CNN: a ReLU must follow a BatchNorm layer");
      case "maxpool2d":
        layer = new MaxPool2d(spec.name, shape);
        break;
      case "dropout":
        layer = new Dropout(spec.name, shape, spec.index);
        break;
      case "gap":
        layer = new GlobalAvgPool(shape);
        break;
      case "linear":
        layer = new Linear(
          spec.name,
          shape,
          spec.inFeatures,
          spec.outFeatures,
          await rt.upload(tensorOf(init, `${spec.name}.weight`, spec.outFeatures * spec.inFeatures)),
          await rt.upload(tensorOf(init, `${spec.name}.bias`, spec.outFeatures)),
        );
        break;
      case "logsoftmax":
        layer = new LogSoftmax(shape);
        break;
    }
    // `li` is the last spec layer this one covers (the ReLU, for a fused BatchNorm): it says what is recorded.
    built.push({ layer, records: CNN_BLOCK_RECORDS[li] ?? null });
    shape = layer.outShape;
  }
  return built;
}
