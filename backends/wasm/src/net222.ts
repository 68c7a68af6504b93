import {
  FORWARD_NAMES,
  WEIGHT_NAMES,
  type Forward,
  type Gradients,
  type Net222Config,
  type Net222Ops,
  type StepRecord,
  type Weights,
} from "@nnspec/spec";
import { instantiate, kernelModule, sharedMemory, type KernelExports } from "./kernels.ts";

/** Floats per record written by assembly/net222.ts: 8 weights, 11 forward values, 8 gradients. */
const RECORD = 27;
const PAGE = 65536;

/** The 2-2-2 network on the wasm kernels (assembly/net222.ts, float32), one small instance per backend. */
export async function createNet222Ops(): Promise<Net222Ops> {
  const module = await kernelModule();
  const ex: KernelExports = instantiate(module, sharedMemory());
  const base = ex.plan(0, 1); // past the control block and the CNN's fixed area, unused here
  const input = base,
    records = base + 64;

  function train(c: Net222Config, lr: number, steps: number): StepRecord[] {
    const end = records + (steps + 1) * RECORD * 4;
    const pages = Math.ceil(end / PAGE) - ex.memory.buffer.byteLength / PAGE;
    if (pages > 0) ex.memory.grow(pages);
    const f32 = new Float32Array(ex.memory.buffer);
    f32.set([c.i1, c.i2, c.t1, c.t2, c.w1, c.w2, c.w3, c.w4, c.w5, c.w6, c.w7, c.w8, c.b1, c.b2], input / 4);
    ex.net222Train(input, lr, steps, records);
    const out: StepRecord[] = [];
    for (let s = 0; s <= steps; s++) {
      const r = records / 4 + s * RECORD;
      const weights = Object.fromEntries(WEIGHT_NAMES.map((w, i) => [w, f32[r + i]!])) as Weights;
      const forward = Object.fromEntries(FORWARD_NAMES.map((f, i) => [f, f32[r + 8 + i]!])) as Forward;
      const gradients = Object.fromEntries(WEIGHT_NAMES.map((w, i) => [w, f32[r + 19 + i]!])) as Gradients;
      out.push({ step: s, weights, forward, gradients });
    }
    return out;
  }

  return {
    async forward(c) {
      return train(c, 0, 0)[0]!.forward;
    },
    async gradients(c) {
      return train(c, 0, 0)[0]!.gradients;
    },
    async step(c, lr) {
      return train(c, lr, 1)[1]!.weights;
    },
    async train(c, lr, steps) {
      return train(c, lr, steps);
    },
  };
}
