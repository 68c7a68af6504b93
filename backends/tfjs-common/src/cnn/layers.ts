import * as tf from "@tensorflow/tfjs";
import { dropoutRate, recordedBlocks, type BlockName, type LayerSpec, type Shape } from "@nnspec/spec";
import { dropoutMaskNhwc } from "./dropout-mask.ts";
import { conv2dFilterGrad, conv2dInputGrad, maxPoolGrad } from "./ops.ts";

/**
 * The CNN's layers as tfjs ops on NHWC activations, each with an explicit backward (no autodiff tape: forward
 * keeps exactly what backward needs, and the conv gradients run on forward kernels every tfjs backend has,
 * including wasm, which lacks Conv2DBackpropFilter).
 * Every function here runs inside the caller's tf.tidy.
 */
export interface ForwardContext {
  readonly train: boolean;
  /** The forward's dropout options (seed, step, optional per-layer rates); null = dropout off. */
  readonly dropout: { readonly seed: number; readonly step: number; readonly rates?: readonly number[] } | null;
  /** Σ over the rows of x [m, c] → [1, c] (per-channel sums over batch and space), the backend's way. */
  channelSum(x2d: tf.Tensor2D): tf.Tensor2D;
  /** Parameter tensor in tfjs layout by state_dict name. */
  param(name: string): tf.Tensor;
  /**
   * BatchNorm's per-channel affine (and the ReLU after it) as one fused GEMM against diag(scale), with the shift
   * as bias: bit-identical to mul + add + relu (each output sums one product and exact zeros, then adds the bias)
   * and one kernel instead of three (wasm: ~3 ms vs ~7 ms at 128×28×28×16).
   */
  readonly affineByGemm: boolean;
}

/** What a train-mode forward keeps for backward (tensors kept past the tidy). */
export type Saved = Record<string, tf.Tensor>;

export interface BnState {
  runningMean: tf.Tensor1D;
  runningVar: tf.Tensor1D;
  numBatchesTracked: number;
}

export interface ForwardOut {
  readonly y: tf.Tensor;
  readonly saved: Saved;
}

export interface BackwardOut {
  readonly dx: tf.Tensor | null;
  /** Gradients in tfjs layout by state_dict name. */
  readonly grads: Record<string, tf.Tensor>;
  /**
   * Per-channel Σ of dx over batch and space, [c], when the layer can give it more accurately than summing dx
   * (BatchNorm: analytically ≈ 0, so the preceding conv's bias gradient is not float32 cancellation noise).
   */
  readonly dxChannelSum?: tf.Tensor;
}

export interface Layer {
  readonly spec: LayerSpec;
  /** torchsummary module type, or null for functional steps (ReLU, GAP, log-softmax). */
  readonly moduleType: string | null;
  /** Per-sample output shape in PyTorch (C, H, W) order. */
  readonly outShape: Shape;
  /** Block output reported under this name when recording. */
  records: BlockName | null;
  forward(x: tf.Tensor, ctx: ForwardContext): ForwardOut;
  /** `dySum`: the next layer's `dxChannelSum`, when it gave one. */
  backward(dy: tf.Tensor, saved: Saved, ctx: ForwardContext, needDx: boolean, dySum?: tf.Tensor): BackwardOut;
}

type Spec<T extends LayerSpec["type"]> = Extract<LayerSpec, { type: T }>;
const dims4 = (t: tf.Tensor): [number, number, number, number] => t.shape as [number, number, number, number];

class Conv2d implements Layer {
  readonly moduleType = "Conv2d";
  records: BlockName | null = null;
  readonly outShape: Shape;
  constructor(
    readonly spec: Spec<"conv2d">,
    inShape: Shape,
  ) {
    this.outShape = [spec.outChannels, inShape[1]!, inShape[2]!];
  }
  forward(x: tf.Tensor, ctx: ForwardContext): ForwardOut {
    const filter = ctx.param(`${this.spec.name}.weight`) as tf.Tensor4D;
    const bias = ctx.param(`${this.spec.name}.bias`) as tf.Tensor1D;
    const y = tf.fused.conv2d({ x: x as tf.Tensor4D, filter, bias, strides: 1, pad: "same" });
    return { y, saved: ctx.train ? { x } : {} };
  }
  backward(dy: tf.Tensor, saved: Saved, ctx: ForwardContext, needDx: boolean, dySum?: tf.Tensor): BackwardOut {
    const x = saved.x as tf.Tensor4D;
    const [n, h, w, co] = dims4(dy);
    const dW = conv2dFilterGrad(x, dy as tf.Tensor4D, this.spec.kernel);
    const dB = tf.reshape(dySum ?? ctx.channelSum(tf.reshape(dy, [n * h * w, co]) as tf.Tensor2D), [co]);
    const dx = needDx ? conv2dInputGrad(dy as tf.Tensor4D, ctx.param(`${this.spec.name}.weight`) as tf.Tensor4D) : null;
    return { dx, grads: { [`${this.spec.name}.weight`]: dW, [`${this.spec.name}.bias`]: dB } };
  }
}

/**
 * BatchNorm2d, PyTorch semantics: train mode normalises with the biased batch variance and moves the running
 * stats by `momentum` towards the batch mean and the *unbiased* variance; eval mode uses the running stats.
 */
class BatchNorm2d implements Layer {
  readonly moduleType = "BatchNorm2d";
  records: BlockName | null = null;
  readonly outShape: Shape;
  constructor(
    readonly spec: Spec<"batchnorm2d">,
    inShape: Shape,
    readonly state: BnState,
  ) {
    this.outShape = [...inShape];
  }
  /** Set by buildLayers when a ReLU follows: with `affineByGemm` this layer applies it and that ReLU passes through. */
  reluFollows = false;
  /**
   * x2 [m, c] · scale + shift, then ReLU if `relu` (only ever when a ReLU follows and is fused here). `shift` must
   * be a tensor *created* with shape [c]: wasm's _FusedMatMul checks the bias buffer's original shape, which a
   * reshape of a [1, c] result does not change.
   */
  private affine(
    x2: tf.Tensor2D,
    scale: tf.Tensor,
    shift: tf.Tensor,
    ctx: ForwardContext,
    relu = this.reluFollows,
  ): tf.Tensor2D {
    if (!ctx.affineByGemm) return tf.add(tf.mul(x2, scale), shift) as tf.Tensor2D;
    const c = x2.shape[1];
    return tf.fused.matMul({
      a: x2,
      b: tf.diag(tf.reshape(scale, [c])) as tf.Tensor2D,
      bias: tf.reshape(shift, [c]),
      activation: relu ? "relu" : "linear",
    }) as tf.Tensor2D;
  }
  forward(x: tf.Tensor, ctx: ForwardContext): ForwardOut {
    const [n, h, w, c] = dims4(x);
    const gamma = ctx.param(`${this.spec.name}.weight`);
    const beta = ctx.param(`${this.spec.name}.bias`);
    const { eps, momentum } = this.spec;
    if (!ctx.train) {
      const scale = tf.mul(gamma, tf.rsqrt(tf.add(this.state.runningVar, eps)));
      const centred = tf.reshape(tf.sub(x, this.state.runningMean), [n * h * w, c]) as tf.Tensor2D;
      return { y: tf.reshape(this.affine(centred, scale, beta, ctx), [n, h, w, c]), saved: {} };
    }
    const m = n * h * w;
    const x2 = tf.reshape(x, [m, c]) as tf.Tensor2D;
    // Two-pass statistics with the classic correction term: the float32 GEMM sum of x leaves a mean error that
    // Σ(x − mean₁) measures and removes, so x̂ sums to ~0 as it should (conv bias gradients stay tiny).
    const mean1 = tf.div(ctx.channelSum(x2), m);
    const d = tf.sub(x2, mean1) as tf.Tensor2D;
    const sumD = ctx.channelSum(d);
    const corr = tf.div(sumD, m);
    const variance = tf.div(tf.sub(ctx.channelSum(tf.square(d)), tf.mul(sumD, corr)), m); // biased
    const mean = tf.add(mean1, corr);
    const invStd = tf.rsqrt(tf.add(variance, eps));
    // Plain broadcast kernels: the wasm FusedBatchNorm kernel measured ~2× slower than a sub and a mul.
    const xhat = tf.mul(tf.sub(d, corr), invStd);
    const y = tf.reshape(this.affine(xhat as tf.Tensor2D, gamma, beta, ctx), [n, h, w, c]);
    // Running stats are replaced, not mutated: the new tensors leave the tidy through `saved` and the model swaps them in.
    const runningMean = tf.add(tf.mul(this.state.runningMean, 1 - momentum), tf.mul(tf.reshape(mean, [c]), momentum));
    const unbiased = tf.mul(tf.reshape(variance, [c]), m / (m - 1));
    const runningVar = tf.add(tf.mul(this.state.runningVar, 1 - momentum), tf.mul(unbiased, momentum));
    return { y, saved: { xhat, invStd, runningMean, runningVar } };
  }
  backward(dy: tf.Tensor, saved: Saved, ctx: ForwardContext): BackwardOut {
    const [n, h, w, c] = dims4(dy);
    const m = n * h * w;
    const gamma = ctx.param(`${this.spec.name}.weight`);
    const g = tf.reshape(dy, [m, c]) as tf.Tensor2D;
    const xhat = saved.xhat!;
    const dBeta = ctx.channelSum(g);
    const dGamma = ctx.channelSum(tf.mul(g, xhat) as tf.Tensor2D);
    // dx = γ·σ⁻¹ · (g − mean(g) − x̂·mean(g·x̂))
    const k = tf.mul(gamma, saved.invStd!);
    const centred = tf.sub(
      g,
      this.affine(xhat as tf.Tensor2D, tf.div(dGamma, m), tf.div(tf.reshape(dBeta, [c]), m), ctx, false),
    );
    const dx = tf.reshape(tf.mul(centred, k), [n, h, w, c]);
    // Σdx = k·(Σg − dβ − dγ·Σx̂/m) and Σg ≡ dβ, so only the (tiny) Σx̂ term remains.
    const dxChannelSum = tf.reshape(tf.neg(tf.mul(k, tf.mul(dGamma, tf.div(ctx.channelSum(xhat as tf.Tensor2D), m)))), [
      c,
    ]);
    return {
      dx,
      dxChannelSum,
      grads: {
        [`${this.spec.name}.weight`]: tf.reshape(dGamma, [c]),
        [`${this.spec.name}.bias`]: tf.reshape(dBeta, [c]),
      },
    };
  }
}

class Relu implements Layer {
  readonly moduleType = null;
  records: BlockName | null = null;
  readonly outShape: Shape;
  constructor(
    readonly spec: Spec<"relu">,
    inShape: Shape,
  ) {
    this.outShape = [...inShape];
  }
  /** Set by buildLayers when a BatchNorm precedes, which applies this ReLU itself under `affineByGemm`. */
  afterBn = false;
  forward(x: tf.Tensor, ctx: ForwardContext): ForwardOut {
    const y = this.afterBn && ctx.affineByGemm ? x : tf.relu(x);
    return { y, saved: ctx.train ? { y } : {} };
  }
  backward(dy: tf.Tensor, saved: Saved): BackwardOut {
    return { dx: tf.mul(dy, tf.step(saved.y!)), grads: {} };
  }
}

class MaxPool2d implements Layer {
  readonly moduleType = "MaxPool2d";
  records: BlockName | null = null;
  readonly outShape: Shape;
  constructor(
    readonly spec: Spec<"maxpool2d">,
    inShape: Shape,
  ) {
    this.outShape = [inShape[0]!, Math.floor(inShape[1]! / spec.size), Math.floor(inShape[2]! / spec.size)];
  }
  forward(x: tf.Tensor, ctx: ForwardContext): ForwardOut {
    const y = tf.maxPool(x as tf.Tensor4D, this.spec.size, this.spec.size, "valid");
    return { y, saved: ctx.train ? { x, y } : {} };
  }
  backward(dy: tf.Tensor, saved: Saved): BackwardOut {
    return {
      dx: maxPoolGrad(dy as tf.Tensor4D, saved.x as tf.Tensor4D, saved.y as tf.Tensor4D, this.spec.size),
      grads: {},
    };
  }
}

class Dropout implements Layer {
  readonly moduleType = "Dropout";
  records: BlockName | null = null;
  readonly outShape: Shape;
  constructor(
    readonly spec: Spec<"dropout">,
    inShape: Shape,
  ) {
    this.outShape = [...inShape];
  }
  forward(x: tf.Tensor, ctx: ForwardContext): ForwardOut {
    if (!ctx.train || !ctx.dropout) return { y: x, saved: {} };
    const [n, h, w, c] = x.rank === 4 ? dims4(x) : [x.shape[0]!, 1, 1, x.shape[1]!];
    // The drop rate is per forward (a recipe may set it); the saved mask holds the scale for backward.
    const p = dropoutRate(ctx.dropout, this.spec.index);
    const mask = tf.tensor(
      dropoutMaskNhwc(ctx.dropout.seed, this.spec.index, ctx.dropout.step, p, n, c, h, w),
      x.shape,
      "float32",
    );
    return { y: tf.mul(x, mask), saved: { mask } };
  }
  backward(dy: tf.Tensor, saved: Saved): BackwardOut {
    return { dx: saved.mask ? tf.mul(dy, saved.mask) : dy, grads: {} };
  }
}

class GlobalAvgPool implements Layer {
  readonly moduleType = null;
  records: BlockName | null = null;
  readonly outShape: Shape;
  private readonly h: number;
  private readonly w: number;
  constructor(
    readonly spec: Spec<"gap">,
    inShape: Shape,
  ) {
    this.outShape = [inShape[0]!];
    this.h = inShape[1]!;
    this.w = inShape[2]!;
  }
  forward(x: tf.Tensor): ForwardOut {
    // Small (7×7) here, so the wasm Mean kernel's transpose of the reduced axes costs little.
    return { y: tf.mean(x, [1, 2]), saved: {} };
  }
  backward(dy: tf.Tensor): BackwardOut {
    const [n, c] = dy.shape as [number, number];
    // A broadcast multiply by ones, not tf.tile: same values, and wasm's Tile measured ~15× slower (~10 ms vs 0.6).
    return {
      dx: tf.mul(tf.reshape(tf.div(dy, this.h * this.w), [n, 1, 1, c]), tf.ones([1, this.h, this.w, 1])),
      grads: {},
    };
  }
}

class Linear implements Layer {
  readonly moduleType = "Linear";
  records: BlockName | null = null;
  readonly outShape: Shape;
  constructor(readonly spec: Spec<"linear">) {
    this.outShape = [spec.outFeatures];
  }
  forward(x: tf.Tensor, ctx: ForwardContext): ForwardOut {
    const weight = ctx.param(`${this.spec.name}.weight`) as tf.Tensor2D; // [out, in], PyTorch layout
    const y = tf.add(tf.matMul(x as tf.Tensor2D, weight, false, true), ctx.param(`${this.spec.name}.bias`));
    return { y, saved: ctx.train ? { x } : {} };
  }
  backward(dy: tf.Tensor, saved: Saved, ctx: ForwardContext, needDx: boolean): BackwardOut {
    const weight = ctx.param(`${this.spec.name}.weight`) as tf.Tensor2D;
    const dW = tf.matMul(dy as tf.Tensor2D, saved.x as tf.Tensor2D, true, false);
    const dB = tf.reshape(ctx.channelSum(dy as tf.Tensor2D), [this.spec.outFeatures]);
    const dx = needDx ? tf.matMul(dy as tf.Tensor2D, weight) : null;
    return { dx, grads: { [`${this.spec.name}.weight`]: dW, [`${this.spec.name}.bias`]: dB } };
  }
}

class LogSoftmax implements Layer {
  readonly moduleType = null;
  records: BlockName | null = null;
  readonly outShape: Shape;
  constructor(
    readonly spec: Spec<"logsoftmax">,
    inShape: Shape,
  ) {
    this.outShape = [...inShape];
  }
  forward(x: tf.Tensor, ctx: ForwardContext): ForwardOut {
    const y = tf.logSoftmax(x);
    return { y, saved: ctx.train ? { y } : {} };
  }
  backward(dy: tf.Tensor, saved: Saved): BackwardOut {
    // dx = dy − softmax · Σ dy
    return { dx: tf.sub(dy, tf.mul(tf.exp(saved.y!), tf.sum(dy, -1, true))), grads: {} };
  }
}

/** The layer list from the architecture data; BatchNorm layers get their running-state holders. */
export function buildLayers(
  layers: readonly LayerSpec[],
  inputShape: Shape,
  bnState: (name: string) => BnState,
  label: string,
): Layer[] {
  const records = recordedBlocks(layers);
  let shape: Shape = [...inputShape];
  const built: Layer[] = [];
  layers.forEach((spec, i) => {
    let layer: Layer;
    switch (spec.type) {
      case "conv2d":
        if (shape[0] !== spec.inChannels)
          throw new Error(`${label} CNN: ${spec.name} gets ${shape[0]} channels, expects ${spec.inChannels}`);
        if (spec.kernel % 2 !== 1) throw new Error(`${label} CNN: ${spec.name} needs an odd kernel for "same" padding`);
        layer = new Conv2d(spec, shape);
        break;
      case "batchnorm2d":
        layer = new BatchNorm2d(spec, shape, bnState(spec.name));
        break;
      case "relu": {
        const relu = new Relu(spec, shape);
        const prev = built[built.length - 1];
        if (prev instanceof BatchNorm2d) {
          prev.reluFollows = true;
          relu.afterBn = true;
        }
        layer = relu;
        break;
      }
      case "maxpool2d":
        layer = new MaxPool2d(spec, shape);
        break;
      case "dropout":
        layer = new Dropout(spec, shape);
        break;
      case "gap":
        layer = new GlobalAvgPool(spec, shape);
        break;
      case "linear":
        if (shape.length !== 1 || shape[0] !== spec.inFeatures)
          throw new Error(`${label} CNN: ${spec.name} gets [${shape.join(", ")}], expects [${spec.inFeatures}]`);
        layer = new Linear(spec);
        break;
      case "logsoftmax":
        layer = new LogSoftmax(spec, shape);
        break;
    }
    layer.records = records[i] ?? null;
    built.push(layer);
    shape = layer.outShape;
  });
  return built;
}
