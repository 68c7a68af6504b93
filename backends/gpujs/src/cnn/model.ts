import {
  CNN_BUFFERS,
  CNN_PARAMS,
  INPUT_SHAPE,
  NUM_CLASSES,
  dropoutRatesProblems,
  validateLabels,
  validateOptimizerState,
  type BlockName,
  type CnnForwardOptions,
  type CnnForwardResult,
  type CnnModel,
  type CnnTensors,
  type FloatArray,
  type SgdStep,
  type SummaryRow,
} from "@nnspec/spec";
import { Scope, type GpuRuntime, type Tensor } from "../runtime.ts";
import * as K from "./kernels.ts";
import { BatchNorm2dRelu, buildLayers, type Built, type Init, type ParamGroup } from "./layers.ts";

export class GpujsCnnModel implements CnnModel {
  private readonly forwardScope: Scope;
  private readonly backwardScope: Scope;
  private readonly groups: Map<string, { group: ParamGroup; offset: number; size: number }>;
  private readonly bns: Map<string, BatchNorm2dRelu>;
  private train: { n: number; logProbs: Tensor } | null = null;
  private haveGradients = false;
  private disposed = false;

  private constructor(
    private readonly rt: GpuRuntime,
    private readonly built: Built[],
  ) {
    this.forwardScope = new Scope(rt);
    this.backwardScope = new Scope(rt);
    this.groups = new Map(
      built.flatMap((b) =>
        b.layer.groups.flatMap((g) =>
          g.slots.map((s) => [s.name, { group: g, offset: s.offset, size: s.size }] as const),
        ),
      ),
    );
    this.bns = new Map(
      built.flatMap((b) => (b.layer instanceof BatchNorm2dRelu ? [[b.layer.name, b.layer] as const] : [])),
    );
    for (const p of CNN_PARAMS)
      if (!this.groups.has(p.name)) throw new Error(`gpujs CNN: the built model has no parameter "${p.name}"`);
  }

  static async create(rt: GpuRuntime, init: Init): Promise<GpujsCnnModel> {
    return new GpujsCnnModel(rt, await buildLayers(rt, init));
  }

  private live(): void {
    if (this.disposed) throw new Error("gpujs CNN: model used after dispose()");
  }

  private allGroups(): ParamGroup[] {
    return [...new Set([...this.groups.values()].map((g) => g.group))];
  }

  async summary(): Promise<SummaryRow[]> {
    this.live();
    const rows: SummaryRow[] = [];
    for (const { layer } of this.built) {
      if (!layer.moduleType) continue;
      const params = layer.groups.reduce((a, g) => a + g.size, 0);
      rows.push({ layer: `${layer.moduleType}-${rows.length + 1}`, outputShape: [...layer.outShape], params });
    }
    return rows;
  }

  async forward(x: FloatArray, n: number, options: CnnForwardOptions): Promise<CnnForwardResult> {
    this.live();
    const perSample = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2];
    if (!Number.isInteger(n) || n < 1) throw new Error(`gpujs CNN: batch size must be a positive integer, got ${n}`);
    if (x.length !== n * perSample)
      throw new Error(`gpujs CNN: input has ${x.length} values, expected ${n}×${perSample}`);
    const rateProblems = options.dropout?.rates ? dropoutRatesProblems(options.dropout.rates) : [];
    if (rateProblems.length) throw new Error(`gpujs CNN: ${rateProblems.join("; ")}`);
    // A new forward ends the previous pass: its saved activations go.
    this.forwardScope.releaseAll();
    this.train = null;
    const train = options.mode === "train";
    const dropout = train && options.dropout ? options.dropout : null;
    const blocks: Partial<Record<BlockName, Float32Array>> = {};
    let a = await this.rt.upload(x);
    if (train) this.forwardScope.keep(a);
    for (const { layer, records } of this.built) {
      let out: Tensor;
      if (train) {
        out = await layer.forward(a, { rt: this.rt, scope: this.forwardScope, n, train, dropout });
      } else {
        // Eval keeps nothing for a backward: each layer's temporaries and its input go as soon as it is done.
        const scope = new Scope(this.rt);
        out = await layer.forward(a, { rt: this.rt, scope, n, train, dropout });
        scope.releaseAllExcept(out);
        if (out !== a) this.rt.release(a);
      }
      a = out;
      if (options.record && records)
        blocks[records] = await this.rt.read(a, n * layer.outShape.reduce((p, q) => p * q, 1));
    }
    const logProbs = blocks.logProbs ?? (await this.rt.read(a, n * NUM_CLASSES));
    if (train) this.train = { n, logProbs: a };
    else this.rt.release(a);
    return options.record ? { logProbs, blocks } : { logProbs };
  }

  async backward(labels: ArrayLike<number>): Promise<{ loss: number }> {
    this.live();
    const st = this.train;
    if (!st) throw new Error("gpujs CNN: backward() needs a train-mode forward() just before it");
    const { n, logProbs } = st;
    validateLabels(labels, n, NUM_CLASSES, "gpujs CNN");
    const y = Float32Array.from(labels);
    this.backwardScope.releaseAll();
    for (const g of this.allGroups()) g.grad = null;
    const scope = this.backwardScope;
    const rt = this.rt;
    const yt = scope.keep(await rt.upload(y));
    const dims = { N: n, K: NUM_CLASSES };
    const lossT = scope.keep(await rt.kernel("nllLoss", K.nllLoss, 1, dims)(logProbs, yt));
    let g: Tensor | null = scope.keep(
      await rt.kernel("nllLogSoftmaxGrad", K.nllLogSoftmaxGrad, n * NUM_CLASSES, dims)(logProbs, yt),
    );
    const pass = { rt, scope, n };
    // The last layer is log-softmax, whose backward the NLL kernel above already did.
    for (let l = this.built.length - 2; l >= 0; l--) g = await this.built[l]!.layer.backward(g!, pass, l > 0);
    this.haveGradients = true;
    return { loss: (await rt.read(lossT, 1))[0]! };
  }

  private async readGroups(pick: (g: ParamGroup) => Tensor | null, what: string): Promise<CnnTensors> {
    const cache = new Map<ParamGroup, Float32Array>();
    const out: CnnTensors = {};
    for (const p of CNN_PARAMS) {
      const { group, offset, size } = this.groups.get(p.name)!;
      let all = cache.get(group);
      if (!all) {
        const t = pick(group);
        if (!t) throw new Error(`gpujs CNN: no ${what} for ${p.name}`);
        all = await this.rt.read(t, group.size);
        cache.set(group, all);
      }
      out[p.name] = all.slice(offset, offset + size);
    }
    return out;
  }

  async gradients(): Promise<CnnTensors> {
    this.live();
    if (!this.haveGradients) throw new Error("gpujs CNN: gradients() before backward()");
    return this.readGroups((g) => g.grad, "gradient");
  }

  async step(sgd: SgdStep): Promise<void> {
    this.live();
    if (!this.haveGradients) throw new Error("gpujs CNN: step() before backward()");
    const rt = this.rt;
    for (const g of this.allGroups()) {
      if (!g.grad) throw new Error(`gpujs CNN: no gradient for ${g.slots[0]!.name}`);
      const first = g.momentum === null;
      const buf = await rt.kernel("sgdMomentum", K.sgdMomentum, g.size, {})(
        g.value,
        g.grad,
        g.momentum ?? g.grad,
        sgd.momentum,
        sgd.weightDecay,
        first ? 1 : 0,
      );
      const value = await rt.kernel("sgdApply", K.sgdApply, g.size, {})(g.value, buf, sgd.lr);
      rt.release(g.momentum);
      rt.release(g.value);
      g.momentum = buf;
      g.value = value;
    }
  }

  async parameters(): Promise<CnnTensors> {
    this.live();
    return this.readGroups((g) => g.value, "value");
  }

  async buffers(): Promise<CnnTensors> {
    this.live();
    const out: CnnTensors = {};
    const cache = new Map<string, Float32Array>();
    for (const b of CNN_BUFFERS) {
      const bn = this.bns.get(b.layer);
      if (!bn) throw new Error(`gpujs CNN: the built model has no BatchNorm layer "${b.layer}"`);
      const C = b.layer === bn.name ? bn.outShape[0]! : 0;
      if (b.role === "num_batches_tracked") {
        out[b.name] = Float32Array.of(bn.numBatchesTracked);
        continue;
      }
      let running = cache.get(bn.name);
      if (!running) {
        running = await this.rt.read(bn.running, 2 * C);
        cache.set(bn.name, running);
      }
      out[b.name] = b.role === "running_mean" ? running.slice(0, C) : running.slice(C, 2 * C);
    }
    return out;
  }

  /** Momentum buffers (capability cnn.optimizer-state), PyTorch layouts like parameters(); empty before the first step. */
  async optimizerState(): Promise<CnnTensors> {
    this.live();
    if (this.allGroups().every((g) => g.momentum === null)) return {};
    return this.readGroups((g) => g.momentum, "momentum");
  }

  async setOptimizerState(state: CnnTensors): Promise<void> {
    this.live();
    // Validated whole before anything changes, so a bad state leaves the model as it was.
    const kind = validateOptimizerState(state, "gpujs CNN");
    const groups = this.allGroups();
    const uploads = new Map<ParamGroup, Tensor | null>();
    for (const g of groups) {
      if (kind === "empty") {
        uploads.set(g, null);
        continue;
      }
      const flat = new Float32Array(g.size);
      for (const slot of g.slots) flat.set(state[slot.name]!, slot.offset);
      uploads.set(g, await this.rt.upload(flat));
    }
    for (const g of groups) {
      this.rt.release(g.momentum);
      g.momentum = uploads.get(g) ?? null;
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.train = null;
    this.forwardScope.releaseAll();
    this.backwardScope.releaseAll();
    for (const g of this.allGroups()) {
      this.rt.release(g.value);
      this.rt.release(g.momentum);
    }
    for (const bn of this.bns.values()) this.rt.release(bn.running);
  }
}
