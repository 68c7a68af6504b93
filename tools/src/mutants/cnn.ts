import {
  BN_EPS,
  BN_MOMENTUM,
  CAPABILITIES,
  dropoutRate,
  sgdUpdate,
  type Backend,
  type Capability,
  type CnnForwardOptions,
  type CnnForwardResult,
  type CnnOps,
  type CnnTensors,
  type SgdStep,
  type Shape,
} from "@nnspec/spec";
import {
  BatchNorm2d,
  Conv2d,
  Dropout,
  GlobalAvgPool,
  LogSoftmax,
  MaxPool2d,
  ReferenceCnnModel,
  arrayFactory,
  buildLayers,
  net222Ops,
  type Arr,
  type ArrayFactory,
  type Built,
  type ForwardContext,
  type Layer,
  type ReferenceCnnSeam,
} from "@nnspec/backend-reference/internals";
import { VERSION } from "@nnspec/backend-reference";
import { roundArrayToFloat16 } from "./float16.ts";

/**
 * CNN mutants: the reference backend's model with ONE piece changed, through its injection seam
 * (ReferenceCnnSeam: the layer list, the per-parameter update) or by wrapping one of its real layers. Every mutant
 * is a realistic bug in an otherwise correct backend; none is special-cased by the suite.
 */
export type MutantPrecision = "float64" | "float32";

/** What a mutation changes; the rest is the reference model as shipped. */
export interface CnnMutation {
  /** Replace layers of the reference's own list (layer index → the layer, wrapped or rebuilt). */
  readonly layers?: (built: Built[], f: ArrayFactory, hooks: ModelHooks) => Built[];
  readonly update?: ReferenceCnnSeam["update"];
  /** Model-level change (the loss reduction). */
  readonly lossScale?: "sum";
  /** Round parameters to float16 when the model is created (the "rounds every tensor" mutant). */
  readonly roundParameters?: (p: Arr) => void;
}

/** What a layer wrapper may need from the model: the options of the forward pass in progress. */
export interface ModelHooks {
  forwardOptions: CnnForwardOptions | null;
}

/** A layer that forwards to a real reference layer; mutations override one method. */
abstract class Wrapped implements Layer {
  constructor(protected readonly inner: Layer) {}
  get moduleType() {
    return this.inner.moduleType;
  }
  get inShape(): Shape {
    return this.inner.inShape;
  }
  get outShape(): Shape {
    return this.inner.outShape;
  }
  get params() {
    return this.inner.params;
  }
  forward(x: Arr, n: number, ctx: ForwardContext): Arr | Promise<Arr> {
    return this.inner.forward(x, n, ctx);
  }
  backward(dy: Arr, n: number, needDx: boolean): Arr | null | Promise<Arr | null> {
    return this.inner.backward(dy, n, needDx);
  }
}

const rot180 = (w: Arr) => {
  // [cout, cin, 3, 3]: reverse each 3×3 tap order (t ↔ 8 − t).
  for (let o = 0; o < w.length; o += 9)
    for (let t = 0; t < 4; t++) {
      const a = w[o + t]!;
      w[o + t] = w[o + 8 - t]!;
      w[o + 8 - t] = a;
    }
};

/** True convolution: the kernel rotated by 180° (what a textbook "convolution" computes; PyTorch correlates). */
class FlippedKernel extends Wrapped {
  override async forward(x: Arr, n: number, ctx: ForwardContext): Promise<Arr> {
    const w = this.inner.params[0]!.data;
    rot180(w);
    try {
      return await this.inner.forward(x, n, ctx);
    } finally {
      rot180(w);
    }
  }
  override async backward(dy: Arr, n: number, needDx: boolean): Promise<Arr | null> {
    const w = this.inner.params[0]!;
    rot180(w.data);
    try {
      const dx = await this.inner.backward(dy, n, needDx);
      rot180(w.grad); // gradient w.r.t. the rotated kernel, back in the stored layout
      return dx;
    } finally {
      rot180(w.data);
    }
  }
}

/** The input gradient computed with the kernel NOT rotated (the transpose is right, the 180° turn forgotten). */
class UnrotatedInputGradient extends Wrapped {
  override async backward(dy: Arr, n: number, needDx: boolean): Promise<Arr | null> {
    const w = this.inner.params[0]!.data;
    rot180(w); // the layer rotates it back while building dx from it; the weight gradient does not read it
    try {
      return await this.inner.backward(dy, n, needDx);
    } finally {
      rot180(w);
    }
  }
}

/**
 * Padding 0 at the top/left and 2 at the bottom/right instead of 1 all round (a "same" padding split the wrong
 * way): the same shape, the output shifted by one pixel. Done by shifting the input of the real layer.
 */
class ShiftedPadding extends Wrapped {
  private shifted: Arr | null = null;
  constructor(
    inner: Layer,
    private readonly f: ArrayFactory,
  ) {
    super(inner);
  }
  private shift(src: Arr, n: number, back: boolean): Arr {
    const [C, H, W] = this.inner.inShape as [number, number, number];
    const out = this.f.alloc(src.length);
    for (let p = 0; p < n * C; p++) {
      const o = p * H * W;
      for (let y = 0; y < H - 1; y++)
        for (let x = 0; x < W - 1; x++) {
          if (back) out[o + (y + 1) * W + x + 1] = src[o + y * W + x]!;
          else out[o + y * W + x] = src[o + (y + 1) * W + x + 1]!;
        }
    }
    return out;
  }
  override forward(x: Arr, n: number, ctx: ForwardContext) {
    this.shifted = this.shift(x, n, false);
    return this.inner.forward(this.shifted, n, ctx);
  }
  override async backward(dy: Arr, n: number, needDx: boolean): Promise<Arr | null> {
    const dx = await this.inner.backward(dy, n, needDx);
    return dx ? this.shift(dx, n, true) : null;
  }
}

/** Max-pool whose tie goes to the LAST maximum of the window: the real layer run on windows in reverse order. */
class LastMaxPool extends Wrapped {
  constructor(
    inner: Layer,
    private readonly f: ArrayFactory,
  ) {
    super(inner);
  }
  private reverseWindows(src: Arr): Arr {
    const [, H, W] = this.inner.inShape as [number, number, number];
    const out = this.f.alloc(src.length);
    for (let o = 0; o < src.length; o += H * W) {
      for (let y = 0; y < H; y += 2)
        for (let x = 0; x < W; x += 2) {
          const a = o + y * W + x,
            b = a + 1,
            c = a + W,
            d = c + 1;
          out[a] = src[d]!;
          out[b] = src[c]!;
          out[c] = src[b]!;
          out[d] = src[a]!;
        }
    }
    return out;
  }
  override forward(x: Arr, n: number, ctx: ForwardContext) {
    return this.inner.forward(this.reverseWindows(x), n, ctx);
  }
  override async backward(dy: Arr, n: number, needDx: boolean): Promise<Arr | null> {
    const dx = await this.inner.backward(dy, n, needDx);
    return dx ? this.reverseWindows(dx) : null;
  }
}

/** Max-pool whose gradient goes to EVERY tied maximum of a window (a mask x == max), not to the first one. */
class AllTiesMaxPool extends Wrapped {
  private input: Arr | null = null;
  override forward(x: Arr, n: number, ctx: ForwardContext) {
    this.input = x;
    return this.inner.forward(x, n, ctx);
  }
  override async backward(dy: Arr, n: number, needDx: boolean): Promise<Arr | null> {
    const dx = await this.inner.backward(dy, n, needDx);
    const x = this.input!;
    if (!dx) return dx;
    const [, H, W] = this.inner.inShape as [number, number, number];
    let o = 0;
    for (let base = 0; base < x.length; base += H * W) {
      for (let y = 0; y < H; y += 2)
        for (let xo = 0; xo < W; xo += 2, o++) {
          const idx = [base + y * W + xo, base + y * W + xo + 1, base + (y + 1) * W + xo, base + (y + 1) * W + xo + 1];
          const m = Math.max(...idx.map((i) => x[i]!));
          for (const i of idx) if (x[i] === m) dx[i] = dy[o]!;
        }
    }
    return dx;
  }
}

/** Scale the output (and the gradient through it) by a constant: dropout without 1/(1−p), GAP that sums. */
class Scaled extends Wrapped {
  private activeNow = false;
  constructor(
    inner: Layer,
    private readonly factor: number,
    private readonly when: (ctx: ForwardContext) => boolean,
  ) {
    super(inner);
  }
  override async forward(x: Arr, n: number, ctx: ForwardContext): Promise<Arr> {
    const out = await this.inner.forward(x, n, ctx);
    this.activeNow = this.when(ctx);
    if (this.activeNow) for (let i = 0; i < out.length; i++) out[i] = out[i]! * this.factor;
    return out;
  }
  override async backward(dy: Arr, n: number, needDx: boolean): Promise<Arr | null> {
    const dx = await this.inner.backward(dy, n, needDx);
    if (dx && this.activeNow) for (let i = 0; i < dx.length; i++) dx[i] = dx[i]! * this.factor;
    return dx;
  }
}

/** Dropout that also drops in eval mode when the caller passes dropout options. */
class DropoutInEval extends Wrapped {
  constructor(
    inner: Layer,
    private readonly hooks: ModelHooks,
  ) {
    super(inner);
  }
  override forward(x: Arr, n: number, ctx: ForwardContext) {
    const d = this.hooks.forwardOptions?.dropout;
    return this.inner.forward(x, n, !ctx.train && d ? { train: true, dropout: d } : ctx);
  }
}

/** Dropout that ignores the forward's rates (a recipe's setting) and drops at the architecture's p. */
class DropoutDefaultRates extends Wrapped {
  override forward(x: Arr, n: number, ctx: ForwardContext) {
    const d = ctx.dropout;
    return this.inner.forward(x, n, d ? { ...ctx, dropout: { seed: d.seed, step: d.step } } : ctx);
  }
}

/** Dropout whose backward scales by the architecture's 1/(1 − p) whatever rate the forward used. */
class DropoutBackwardDefaultRate extends Wrapped {
  private factor = 1;
  override async forward(x: Arr, n: number, ctx: ForwardContext): Promise<Arr> {
    const p = (this.inner as Dropout).p;
    this.factor =
      ctx.train && ctx.dropout ? (1 - dropoutRate(ctx.dropout, (this.inner as Dropout).index)) / (1 - p) : 1;
    return this.inner.forward(x, n, ctx);
  }
  override async backward(dy: Arr, n: number, needDx: boolean): Promise<Arr | null> {
    const dx = await this.inner.backward(dy, n, needDx);
    if (dx && this.factor !== 1) for (let i = 0; i < dx.length; i++) dx[i] = dx[i]! * this.factor;
    return dx;
  }
}

// BatchNorm mutations subclass the real layer: the model finds its BN layers (for buffers) by class.

/** BatchNorm whose eval mode normalises with the batch's statistics (running statistics left untouched). */
class BatchStatsInEval extends BatchNorm2d {
  override forward(x: Arr, n: number, ctx: ForwardContext): Arr {
    if (ctx.train) return super.forward(x, n, ctx);
    const saved = { mean: this.runningMean.slice(), var: this.runningVar.slice(), count: this.numBatchesTracked };
    const out = super.forward(x, n, { ...ctx, train: true });
    this.runningMean.set(saved.mean);
    this.runningVar.set(saved.var);
    this.numBatchesTracked = saved.count;
    return out;
  }
}

/** BatchNorm whose running variance takes the biased batch variance (÷N instead of ÷(N − 1)). */
class BiasedRunningVar extends BatchNorm2d {
  override forward(x: Arr, n: number, ctx: ForwardContext): Arr {
    const before = this.runningVar.slice();
    const out = super.forward(x, n, ctx);
    if (ctx.train) {
      const count = n * this.inShape[1]! * this.inShape[2]!;
      // The layer stored m·v/(N−1) + (1−m)·old; take back m·v/(N−1)·(1/N), leaving m·v/N + (1−m)·old.
      for (let c = 0; c < before.length; c++)
        this.runningVar[c] = this.runningVar[c]! - (this.runningVar[c]! - (1 - BN_MOMENTUM) * before[c]!) / count;
    }
    return out;
  }
}

/** Round every tensor a layer produces (output, input gradient, parameter gradients) to float16. */
async function roundedForward(out: Arr | Promise<Arr>): Promise<Arr> {
  const o = await out;
  roundArrayToFloat16(o);
  return o;
}
async function roundedBackward(layer: Layer, dx: Arr | null | Promise<Arr | null>, dy: Arr): Promise<Arr | null> {
  const d = await dx;
  if (d && d !== dy) roundArrayToFloat16(d);
  for (const p of layer.params) roundArrayToFloat16(p.grad);
  return d;
}
class Float16Layer extends Wrapped {
  override forward(x: Arr, n: number, ctx: ForwardContext) {
    return roundedForward(this.inner.forward(x, n, ctx));
  }
  override backward(dy: Arr, n: number, needDx: boolean) {
    return roundedBackward(this.inner, this.inner.backward(dy, n, needDx), dy);
  }
}
class Float16BatchNorm extends BatchNorm2d {
  override forward(x: Arr, n: number, ctx: ForwardContext): Arr {
    const out = super.forward(x, n, ctx);
    for (const t of [out, this.runningMean, this.runningVar]) roundArrayToFloat16(t);
    return out;
  }
  override backward(dy: Arr, n: number, needDx: boolean): Arr | null {
    const dx = super.backward(dy, n, needDx);
    if (dx) roundArrayToFloat16(dx);
    for (const p of this.params) roundArrayToFloat16(p.grad);
    return dx;
  }
}

/** The NLL summed over the batch instead of averaged: loss × n, and every gradient × n (through log-softmax). */
class SummedLoss extends Wrapped {
  override backward(dy: Arr, n: number, needDx: boolean) {
    const scaled = dy.slice();
    for (let i = 0; i < scaled.length; i++) scaled[i] = scaled[i]! * n;
    return this.inner.backward(scaled, n, needDx);
  }
}

const mapLayers = (built: Built[], pick: (l: Layer) => boolean, wrap: (l: Layer) => Layer): Built[] =>
  built.map((b) => (pick(b.layer) ? { ...b, layer: wrap(b.layer) } : b));
const named = (name: string) => (l: Layer) => (l as { name?: string }).name === name;

/** BatchNorm layers rebuilt as `Kind` (the real class or a subclass), with the spec's or other constants. */
function rebuildBn(
  built: Built[],
  f: ArrayFactory,
  o: { eps?: number; momentum?: number; Kind?: typeof BatchNorm2d } = {},
): Built[] {
  const Kind = o.Kind ?? BatchNorm2d;
  return mapLayers(
    built,
    (l) => l instanceof BatchNorm2d,
    (l) => new Kind(f, (l as BatchNorm2d).name, l.inShape, o.eps ?? BN_EPS, o.momentum ?? BN_MOMENTUM),
  );
}

const withoutWeightDecay = (s: SgdStep): SgdStep => ({ ...s, weightDecay: 0 });

export interface CnnMutantSpec {
  readonly id: string;
  readonly title: string;
  readonly mutation: CnnMutation;
}

export const CNN_MUTANTS: readonly CnnMutantSpec[] = [
  {
    id: "weight-decay-ignored",
    title: "SGD ignores weight decay",
    mutation: { update: (_n, p, g, b, first, s) => sgdUpdate(p, g, b, first, withoutWeightDecay(s)) },
  },
  {
    id: "decoupled-weight-decay",
    title: "weight decay decoupled from the gradient (p ← p·(1 − lr·wd), SGDW style)",
    mutation: {
      update: (_n, p, g, b, first, s) => {
        for (let i = 0; i < p.length; i++) p[i] = p[i]! * (1 - s.lr * s.weightDecay);
        sgdUpdate(p, g, b, first, withoutWeightDecay(s));
      },
    },
  },
  {
    id: "momentum-dampening",
    title: "momentum with dampening = momentum (buf ← m·buf + (1 − m)·g)",
    mutation: {
      update: (_n, p, g, b, first, s) => {
        for (let i = 0; i < p.length; i++) {
          const gi = g[i]! + s.weightDecay * p[i]!;
          b[i] = first ? gi : s.momentum * b[i]! + (1 - s.momentum) * gi;
          p[i] = p[i]! - s.lr * b[i]!;
        }
      },
    },
  },
  {
    id: "nesterov",
    title: "Nesterov momentum (p ← p − lr·(g + m·buf))",
    mutation: {
      update: (_n, p, g, b, first, s) => {
        for (let i = 0; i < p.length; i++) {
          const gi = g[i]! + s.weightDecay * p[i]!;
          b[i] = first ? gi : s.momentum * b[i]! + gi;
          p[i] = p[i]! - s.lr * (gi + s.momentum * b[i]!);
        }
      },
    },
  },
  {
    id: "weight-decay-skips-bn-and-biases",
    title: "weight decay skipped for BatchNorm parameters and biases (a common recipe, not the contract's)",
    mutation: {
      update: (name, p, g, b, first, s) =>
        sgdUpdate(p, g, b, first, name.startsWith("bn") || name.endsWith(".bias") ? withoutWeightDecay(s) : s),
    },
  },
  {
    id: "fc-bias-frozen",
    title: "fc.bias never updated",
    mutation: {
      update: (name, p, g, b, first, s) => {
        if (name !== "fc.bias") sgdUpdate(p, g, b, first, s);
      },
    },
  },
  {
    id: "bn-biased-running-var",
    title: "BN running_var from the biased batch variance (÷N)",
    mutation: { layers: (built, f) => rebuildBn(built, f, { Kind: BiasedRunningVar }) },
  },
  {
    id: "bn-eps-1e-3",
    title: "BN eps 1e-3 instead of 1e-5",
    mutation: { layers: (built, f) => rebuildBn(built, f, { eps: 1e-3 }) },
  },
  {
    id: "bn-momentum-swapped",
    title: "BN momentum convention swapped (running ← 0.9·batch + 0.1·running)",
    mutation: { layers: (built, f) => rebuildBn(built, f, { momentum: 1 - BN_MOMENTUM }) },
  },
  {
    id: "bn-eval-batch-stats",
    title: "BN in eval mode normalises with batch statistics",
    mutation: { layers: (built, f) => rebuildBn(built, f, { Kind: BatchStatsInEval }) },
  },
  {
    id: "conv-flipped-kernel",
    title: "true convolution: every kernel rotated by 180°",
    mutation: {
      layers: (built) =>
        mapLayers(
          built,
          (l) => l instanceof Conv2d,
          (l) => new FlippedKernel(l),
        ),
    },
  },
  {
    id: "conv-dx-kernel-unrotated",
    title: "conv input gradient with the kernel transposed but not rotated by 180°",
    mutation: {
      layers: (built) =>
        mapLayers(
          built,
          (l) => l instanceof Conv2d,
          (l) => new UnrotatedInputGradient(l),
        ),
    },
  },
  {
    id: "conv5-padding-shifted",
    title: "conv5 pads 0 top/left and 2 bottom/right instead of 1 all round",
    mutation: { layers: (built, f) => mapLayers(built, named("conv5"), (l) => new ShiftedPadding(l, f)) },
  },
  {
    id: "maxpool-last-max",
    title: "max-pool ties routed to the last maximum",
    mutation: {
      layers: (built, f) =>
        mapLayers(
          built,
          (l) => l instanceof MaxPool2d,
          (l) => new LastMaxPool(l, f),
        ),
    },
  },
  {
    id: "maxpool-grad-to-all-ties",
    title: "max-pool gradient sent to every tied maximum",
    mutation: {
      layers: (built) =>
        mapLayers(
          built,
          (l) => l instanceof MaxPool2d,
          (l) => new AllTiesMaxPool(l),
        ),
    },
  },
  {
    id: "dropout-unscaled",
    title: "dropout without the 1/(1 − p) scale",
    mutation: {
      layers: (built) =>
        mapLayers(
          built,
          (l) => l instanceof Dropout,
          (l) => new Scaled(l, 1 - (l as Dropout).p, (ctx) => ctx.train && ctx.dropout !== null),
        ),
    },
  },
  {
    id: "dropout-in-eval",
    title: "dropout active in eval mode",
    mutation: {
      layers: (built, _f, hooks) =>
        mapLayers(
          built,
          (l) => l instanceof Dropout,
          (l) => new DropoutInEval(l, hooks),
        ),
    },
  },
  {
    id: "dropout-rates-ignored",
    title: "dropout at the architecture's rates whatever rates the forward gives",
    mutation: {
      layers: (built) =>
        mapLayers(
          built,
          (l) => l instanceof Dropout,
          (l) => new DropoutDefaultRates(l),
        ),
    },
  },
  {
    id: "dropout-backward-default-rate",
    title: "dropout backward scaled by the architecture's rate, not the forward's",
    mutation: {
      layers: (built) =>
        mapLayers(
          built,
          (l) => l instanceof Dropout,
          (l) => new DropoutBackwardDefaultRate(l),
        ),
    },
  },
  {
    id: "nll-summed",
    title: "NLL summed over the batch instead of averaged",
    mutation: {
      lossScale: "sum",
      layers: (built) =>
        mapLayers(
          built,
          (l) => l instanceof LogSoftmax,
          (l) => new SummedLoss(l),
        ),
    },
  },
  {
    id: "gap-sum",
    title: "global average pooling sums instead of averaging",
    mutation: {
      layers: (built) =>
        mapLayers(
          built,
          (l) => l instanceof GlobalAvgPool,
          (l) => new Scaled(l, l.inShape[1]! * l.inShape[2]!, () => true),
        ),
    },
  },
  {
    id: "float16-storage",
    title: 'a "float32" backend that rounds every tensor to float16',
    mutation: {
      layers: (built, f) =>
        mapLayers(
          rebuildBn(built, f, { Kind: Float16BatchNorm }),
          (l) => !(l instanceof BatchNorm2d),
          (l) => new Float16Layer(l),
        ),
      update: (_n, p, g, b, first, s) => {
        sgdUpdate(p, g, b, first, s);
        roundArrayToFloat16(p);
        roundArrayToFloat16(b);
      },
      roundParameters: roundArrayToFloat16,
    },
  },
];

/** The reference model with the mutation's seam filled in. */
class MutantModel extends ReferenceCnnModel {
  constructor(
    f: ArrayFactory,
    init: { parameters: CnnTensors; buffers?: CnnTensors },
    private readonly m: CnnMutation,
    private readonly hooks: ModelHooks,
  ) {
    let built: Built[] = [];
    super(f, init, null, {
      buildLayers: (ff, pool) =>
        (built = m.layers ? m.layers(buildLayers(ff, pool), ff, hooks) : buildLayers(ff, pool)),
      ...(m.update ? { update: m.update } : {}),
    });
    if (m.roundParameters) for (const b of built) for (const p of b.layer.params) m.roundParameters(p.data);
  }
  override async forward(x: ArrayLike<number>, n: number, options: CnnForwardOptions): Promise<CnnForwardResult> {
    this.hooks.forwardOptions = options;
    try {
      return await super.forward(x, n, options);
    } finally {
      this.hooks.forwardOptions = null;
    }
  }
  override async backward(labels: ArrayLike<number>): Promise<{ loss: number }> {
    const r = await super.backward(labels);
    return this.m.lossScale === "sum" ? { loss: r.loss * labels.length } : r;
  }
}

/**
 * A whole backend around one CNN mutation: the reference's manifest (declared precision = the precision it runs
 * at), its correct 2-2-2 part, one conv thread (no worker: fast to create, and the machine is shared).
 */
export function cnnMutantBackend(spec: CnnMutantSpec | null, precision: MutantPrecision): Backend {
  const f = arrayFactory(precision);
  const cnn: CnnOps = {
    async create(init) {
      return new MutantModel(f, init, spec?.mutation ?? {}, { forwardOptions: null });
    },
  };
  const capabilities: Capability[] = [...CAPABILITIES];
  return {
    manifest: {
      name: spec ? `mutant-${spec.id}` : "mutant-control",
      version: VERSION,
      precision,
      environment: "node",
      device: `reference ${precision}, 1 thread${spec ? `, mutation: ${spec.title}` : ", unmutated"}`,
      capabilities,
    },
    net222: net222Ops,
    cnn,
  };
}
