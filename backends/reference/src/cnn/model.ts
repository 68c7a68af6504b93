import {
  CNN_BUFFERS,
  CNN_PARAMS,
  INPUT_SHAPE,
  dropoutRatesProblems,
  sgdUpdate,
  validateLabels,
  validateOptimizerState,
  type BlockName,
  type CnnForwardOptions,
  type CnnForwardResult,
  type CnnModel,
  type CnnTensors,
  type SgdStep,
  type SummaryRow,
} from "@nnspec/spec";
import type { Arr, ArrayFactory } from "./arrays.ts";
import type { ConvPool } from "./conv-pool.ts";
import { BatchNorm2d, buildLayers, type Built, type ForwardContext, type ParamSlot } from "./layers.ts";

/**
 * An injection seam for the mutation corpus that judges the judge (tools/src/mutants): it replaces how the layers
 * are built or how one parameter is updated, so a mutant is this model with one piece changed. createBackend never
 * sets it, and it is not part of the backend contract.
 */
export interface ReferenceCnnSeam {
  readonly buildLayers?: (f: ArrayFactory, pool: ConvPool | null) => Built[];
  readonly update?: (name: string, p: Arr, grad: Float64Array, buf: Arr, first: boolean, sgd: SgdStep) => void;
}

export class ReferenceCnnModel implements CnnModel {
  private readonly built: Built[];
  private readonly slots: Map<string, ParamSlot>;
  private readonly bns: Map<string, BatchNorm2d>;
  private readonly momentum = new Map<string, Arr>();
  private trainState: { n: number; logProbs: Arr } | null = null;
  private haveGradients = false;
  private disposed = false;

  private input: Arr | null = null;

  /** `pool`: a conv worker this model owns (closed by dispose), or null for single-threaded. */
  constructor(
    private readonly f: ArrayFactory,
    init: { parameters: CnnTensors; buffers?: CnnTensors },
    private readonly pool: ConvPool | null,
    private readonly seam: ReferenceCnnSeam = {},
  ) {
    this.built = (seam.buildLayers ?? buildLayers)(f, pool);
    this.slots = new Map(this.built.flatMap((b) => b.layer.params.map((p) => [p.name, p] as const)));
    this.bns = new Map(
      this.built.flatMap((b) => (b.layer instanceof BatchNorm2d ? [[b.layer.name, b.layer] as const] : [])),
    );
    for (const spec of CNN_PARAMS) {
      const slot = this.slots.get(spec.name);
      const src = init.parameters[spec.name];
      if (!slot) throw new Error(`reference CNN: the built model has no parameter "${spec.name}"`);
      if (!src) throw new Error(`reference CNN: parameters.${spec.name} is missing`);
      if (src.length !== slot.data.length)
        throw new Error(
          `reference CNN: parameters.${spec.name} has ${src.length} values, expected ${slot.data.length}`,
        );
      slot.data.set(src);
    }
    if (init.buffers) {
      for (const spec of CNN_BUFFERS) {
        const src = init.buffers[spec.name];
        if (!src) throw new Error(`reference CNN: buffers.${spec.name} is missing`);
        if (src.length !== spec.size)
          throw new Error(`reference CNN: buffers.${spec.name} has ${src.length} values, expected ${spec.size}`);
        const bn = this.bns.get(spec.layer)!;
        if (spec.role === "running_mean") bn.runningMean.set(src);
        else if (spec.role === "running_var") bn.runningVar.set(src);
        else bn.numBatchesTracked = src[0]!;
      }
    }
  }

  private live(): void {
    if (this.disposed) throw new Error("reference CNN: model used after dispose()");
  }

  async summary(): Promise<SummaryRow[]> {
    this.live();
    const rows: SummaryRow[] = [];
    for (const { layer } of this.built) {
      if (!layer.moduleType) continue;
      const params = layer.params.reduce((a, p) => a + p.data.length, 0);
      rows.push({ layer: `${layer.moduleType}-${rows.length + 1}`, outputShape: [...layer.outShape], params });
    }
    return rows;
  }

  async forward(x: ArrayLike<number>, n: number, options: CnnForwardOptions): Promise<CnnForwardResult> {
    this.live();
    const perSample = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2];
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`reference CNN: batch size must be a positive integer, got ${n}`);
    if (x.length !== n * perSample)
      throw new Error(`reference CNN: input has ${x.length} values, expected ${n}×${perSample}`);
    const rateProblems = options.dropout?.rates ? dropoutRatesProblems(options.dropout.rates) : [];
    if (rateProblems.length) throw new Error(`reference CNN: ${rateProblems.join("; ")}`);
    const train = options.mode === "train";
    const ctx: ForwardContext = { train, dropout: train && options.dropout ? options.dropout : null };
    const blocks: Partial<Record<BlockName, Arr>> = {};
    if (!this.input || this.input.length !== x.length) this.input = this.f.allocShared(x.length);
    this.input.set(x);
    let a: Arr = this.input;
    for (const { layer, records } of this.built) {
      a = await layer.forward(a, n, ctx);
      if (options.record && records) blocks[records] = a.slice();
    }
    // Eval passes reuse the same workspaces, so they invalidate what a backward would need.
    this.trainState = train ? { n, logProbs: a } : null;
    return options.record ? { logProbs: a.slice(), blocks } : { logProbs: a.slice() };
  }

  async backward(labels: ArrayLike<number>): Promise<{ loss: number }> {
    this.live();
    const st = this.trainState;
    if (!st) throw new Error("reference CNN: backward() needs a train-mode forward() just before it");
    const { n, logProbs } = st;
    const C = logProbs.length / n;
    validateLabels(labels, n, C, "reference CNN");
    const dy = this.f.alloc(logProbs.length);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const y = labels[i]!;
      loss -= logProbs[i * C + y]!;
      dy[i * C + y] = -1 / n;
    }
    let g: Arr | null = dy;
    for (let l = this.built.length - 1; l >= 0; l--) {
      g = await this.built[l]!.layer.backward(g!, n, l > 0);
    }
    this.haveGradients = true;
    return { loss: loss / n };
  }

  async gradients(): Promise<CnnTensors> {
    this.live();
    if (!this.haveGradients) throw new Error("reference CNN: gradients() before backward()");
    return Object.fromEntries(CNN_PARAMS.map((p) => [p.name, this.f.from(this.slots.get(p.name)!.grad)]));
  }

  async step(sgd: SgdStep): Promise<void> {
    this.live();
    if (!this.haveGradients) throw new Error("reference CNN: step() before backward()");
    for (const p of CNN_PARAMS) {
      const slot = this.slots.get(p.name)!;
      let buf = this.momentum.get(p.name);
      const first = !buf;
      if (!buf) {
        buf = this.f.alloc(slot.data.length);
        this.momentum.set(p.name, buf);
      }
      if (this.seam.update) this.seam.update(p.name, slot.data, slot.grad, buf, first, sgd);
      else sgdUpdate(slot.data, slot.grad, buf, first, sgd);
    }
  }

  async parameters(): Promise<CnnTensors> {
    this.live();
    return Object.fromEntries(CNN_PARAMS.map((p) => [p.name, this.slots.get(p.name)!.data.slice()]));
  }

  async buffers(): Promise<CnnTensors> {
    this.live();
    return Object.fromEntries(
      CNN_BUFFERS.map((b) => {
        const bn = this.bns.get(b.layer)!;
        if (b.role === "running_mean") return [b.name, bn.runningMean.slice()];
        if (b.role === "running_var") return [b.name, bn.runningVar.slice()];
        const t = this.f.alloc(1);
        t[0] = bn.numBatchesTracked;
        return [b.name, t];
      }),
    );
  }

  /** Momentum buffers (capability cnn.optimizer-state): copies, empty before the first step. */
  async optimizerState(): Promise<CnnTensors> {
    this.live();
    if (this.momentum.size === 0) return {};
    return Object.fromEntries(CNN_PARAMS.map((p) => [p.name, this.momentum.get(p.name)!.slice()]));
  }

  async setOptimizerState(state: CnnTensors): Promise<void> {
    this.live();
    // Validated whole before anything changes, so a bad state leaves the model as it was.
    if (validateOptimizerState(state, "reference CNN") === "empty") {
      this.momentum.clear();
      return;
    }
    for (const p of CNN_PARAMS) this.momentum.set(p.name, this.f.from(state[p.name]!));
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.trainState = null;
    await this.pool?.close();
  }
}
