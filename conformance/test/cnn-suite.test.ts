import { beforeAll, describe, expect, it } from "vitest";
import {
  CNN_BUFFERS,
  CNN_PARAMS,
  initBuffers,
  sgdUpdate,
  summaryTable,
  type Backend,
  type CnnModel,
  type CnnOps,
  type CnnTensors,
  type SgdStep,
} from "@nnspec/spec";
import { listCnnFixtures, oracleBackward, oracleForward, type OracleForward, type Tensors64 } from "@nnspec/fixtures";
import { cnnChecks } from "../src/suites/cnn.ts";
import { runChecks, tally } from "../src/runner.ts";
import type { CheckResult } from "../src/checks.ts";

/**
 * A tiny float64 CNN backend built on the fixtures' independent oracle (forward, backward) and the spec's SGD.
 * `tamper` lets a test corrupt one thing and see exactly which checks notice.
 */
interface Tamper {
  readonly gradient?: { readonly name: string; readonly index: number };
  /** Eval mode computed with batch statistics (a classic bug). */
  readonly evalUsesBatchStats?: boolean;
  /** Dropout without the 1/(1 − p) rescaling. */
  readonly dropoutUnscaled?: boolean;
  /** setOptimizerState accepted but ignored (momentum silently restarts on a resume). */
  readonly momentumNotRestored?: boolean;
  /** Dropout at the architecture's p whatever rates the forward gives (a recipe's setting lost). */
  readonly dropoutRatesIgnored?: boolean;
}

const copy = (m: Record<string, ArrayLike<number>>): Tensors64 =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Float64Array.from(v)]));

function oracleBackend(tamper: Tamper = {}): Backend {
  const ops: CnnOps = {
    async create(init) {
      const params = copy(init.parameters);
      const buffers = init.buffers ? copy(init.buffers) : initBuffers();
      const momentum: Tensors64 = {};
      let last: OracleForward | undefined;
      let grads: Tensors64 | undefined;
      const model: CnnModel = {
        async summary() {
          return summaryTable();
        },
        async forward(x, n, options) {
          const evalBatch = options.mode === "eval" && tamper.evalUsesBatchStats;
          const d = options.dropout;
          const dropout = d && tamper.dropoutRatesIgnored ? { seed: d.seed, step: d.step } : d;
          const fwd = oracleForward(params, evalBatch ? initBuffers() : buffers, x, n, {
            mode: evalBatch ? "train" : options.mode,
            ...(dropout ? { dropout } : {}),
          });
          if (options.mode === "train") last = fwd;
          let blocks = fwd.blocks;
          if (tamper.dropoutUnscaled && options.dropout && options.mode === "train") {
            // Recompute with the mask but without rescaling: undo the 1/(1 − 0.15) of drop3 at the GAP.
            blocks = { ...blocks, gap: blocks.gap.map((v) => v * (1 - 0.15)) };
          }
          return { logProbs: fwd.logProbs, ...(options.record ? { blocks } : {}) };
        },
        async backward(labels) {
          if (!last) throw new Error("backward before a train-mode forward");
          const r = oracleBackward(params, last, labels);
          grads = r.gradients;
          if (tamper.gradient) grads[tamper.gradient.name]![tamper.gradient.index]! *= 1 + 1e-6;
          return { loss: r.loss };
        },
        async gradients() {
          return copy(grads!);
        },
        async step(sgd: SgdStep) {
          for (const p of CNN_PARAMS) {
            const first = !momentum[p.name];
            momentum[p.name] ??= new Float64Array(p.size);
            sgdUpdate(params[p.name]!, grads![p.name]!, momentum[p.name]!, first, sgd);
          }
        },
        async parameters(): Promise<CnnTensors> {
          return copy(Object.fromEntries(CNN_PARAMS.map((p) => [p.name, params[p.name]!])));
        },
        async buffers(): Promise<CnnTensors> {
          return copy(Object.fromEntries(CNN_BUFFERS.map((b) => [b.name, buffers[b.name]!])));
        },
        async optimizerState(): Promise<CnnTensors> {
          return copy(momentum);
        },
        async setOptimizerState(state: CnnTensors) {
          if (tamper.momentumNotRestored) return;
          for (const k of Object.keys(momentum)) delete momentum[k];
          Object.assign(momentum, copy(state));
        },
        async dispose() {},
      };
      return model;
    },
  };
  return {
    manifest: {
      name: "oracle-test",
      version: "0",
      precision: "float64",
      environment: "node",
      device: "test",
      capabilities: ["cnn.forward", "cnn.backward", "cnn.step", "cnn.dropout", "cnn.optimizer-state"],
    },
    cnn: ops,
  };
}

const fixtures = await listCnnFixtures();
const caseName = "batch2-seed7"; // the smaller case keeps the tampered runs quick
const smallCase = fixtures.filter((f) => f.endsWith(`${caseName}.json`));

/** The tampered runs leave out the (slow) finite-difference check; the honest run covers it. */
const quickChecks = async () => (await cnnChecks(smallCase)).filter((c) => !c.id.endsWith("finite-difference"));
const failing = (rs: CheckResult[]) => rs.filter((r) => r.status !== "pass").map((r) => r.id);

describe("CNN conformance checks", () => {
  let honest: CheckResult[];
  beforeAll(async () => {
    honest = await runChecks(oracleBackend(), await cnnChecks(fixtures));
  });

  it("are generated per committed golden case with structured ids", async () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(2);
    const ids = honest.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const f of fixtures) {
      const name = f.replace(/^.*\//, "").replace(/\.json$/, "");
      for (const id of [
        "forward.block3",
        "forward.logProbs",
        "backward.grad.conv3.weight",
        "backward.finite-difference",
        "step.param.fc.bias",
        "step.buffers.bn9",
        "eval.logProbs",
        "dropout.mask",
        "dropout.rates",
        "dropout.rates-zero",
        "dropout.rates-backward",
      ]) {
        expect(ids).toContain(`cnn.${name}.${id}`);
      }
    }
  });

  it("all pass for an independent float64 implementation", () => {
    const bad = honest.filter((r) => r.status !== "pass").map((r) => `${r.id}: ${r.detail}`);
    expect(bad).toEqual([]);
    expect(tally(honest).passed).toBe(honest.length);
  });

  it("leave out the finite-difference spot check when the precision is known not to be float64", async () => {
    const ids = (await cnnChecks(smallCase, { precision: "float32" })).map((c) => c.id);
    expect(ids).not.toContain(`cnn.${caseName}.backward.finite-difference`);
    expect(ids).toContain(`cnn.${caseName}.backward.grad.conv3.weight`);
  });

  it("catch a gradient off by one part in a million, by check id", async () => {
    const rs = await runChecks(oracleBackend({ gradient: { name: "conv3.weight", index: 100 } }), await quickChecks());
    const bad = failing(rs);
    expect(bad).toContain(`cnn.${caseName}.backward.grad.conv3.weight`);
    expect(bad).toContain(`cnn.${caseName}.step.param.conv3.weight`);
    // Nothing upstream of the gradient is blamed.
    expect(
      bad.filter((b) => b.includes(".forward.") || (b.includes(".backward.") && !b.endsWith("grad.conv3.weight"))),
    ).toEqual([]);
  });

  it("finite differences catch a backward inconsistent with the backend's own forward", async () => {
    const fd = (await cnnChecks(smallCase)).filter((c) => c.id.endsWith("finite-difference"));
    const [r] = await runChecks(oracleBackend({ gradient: { name: "fc.weight", index: 37 } }), fd);
    expect(r!.status, r!.detail).toBe("fail");
    expect(r!.detail).toMatch(/fc\.weight\[37\]/);
  });

  it("catch eval mode using batch statistics", async () => {
    const bad = failing(await runChecks(oracleBackend({ evalUsesBatchStats: true }), await quickChecks()));
    expect(bad).toContain(`cnn.${caseName}.eval.logProbs`);
    expect(bad).toContain(`cnn.${caseName}.eval.differs-from-train`);
    expect(bad).toContain(`cnn.${caseName}.dropout.eval-identity`);
  });

  it("catch a resume that loses the SGD momentum (cnn.optimizer-state)", async () => {
    const bad = failing(await runChecks(oracleBackend({ momentumNotRestored: true }), await quickChecks()));
    expect(bad).toEqual([`cnn.${caseName}.step.optimizer-state.resume`]);
  });

  it("catch dropout without the 1/(1−p) scale", async () => {
    const bad = failing(await runChecks(oracleBackend({ dropoutUnscaled: true }), await quickChecks()));
    expect(bad).toEqual(expect.arrayContaining([`cnn.${caseName}.dropout.mask`, `cnn.${caseName}.dropout.scale`]));
    expect(bad.filter((b) => !b.includes(".dropout."))).toEqual([]);
  });

  it("catch dropout that ignores the forward's rates, and nothing else", async () => {
    const bad = failing(await runChecks(oracleBackend({ dropoutRatesIgnored: true }), await quickChecks()));
    expect(bad.sort()).toEqual([
      `cnn.${caseName}.dropout.rates`,
      `cnn.${caseName}.dropout.rates-backward`,
      `cnn.${caseName}.dropout.rates-zero`,
    ]);
  });
});
