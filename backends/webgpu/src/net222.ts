/// <reference types="@webgpu/types" />
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
import type { Gpu } from "./gpu.ts";
import { NET222_RECORD } from "./shaders.ts";

/** Updates per dispatch of a long `train` (each dispatch is one invocation looping over its steps). */
const CHUNK = 4096;

/**
 * The 2-2-2 network in one WGSL invocation (shaders.ts NET222): forward values, gradients by backpropagation and
 * `steps` simultaneous updates, float32, all on the device; one readback per call (per 4096 steps of a long train).
 */
export class WebGpuNet222 implements Net222Ops {
  private cfg: GPUBuffer | null = null;
  private out: GPUBuffer | null = null;

  constructor(private readonly gpu: Gpu) {}

  /** Records 0..steps (steps ≤ CHUNK) from config `c`. */
  private async run(c: Net222Config, lr: number, steps: number): Promise<StepRecord[]> {
    this.cfg ??= this.gpu.storage("2-2-2 config", 14);
    this.out ??= this.gpu.storage("2-2-2 records", (CHUNK + 1) * NET222_RECORD);
    this.gpu.write(this.cfg, Float32Array.from([c.i1, c.i2, c.t1, c.t2, c.b1, c.b2, ...WEIGHT_NAMES.map((w) => c[w])]));
    this.gpu.dispatch({
      pipeline: "net222",
      bindings: [this.gpu.uniform("net222", [{ u: steps }, { f: lr }, { u: 0 }, { u: 0 }]), this.cfg, this.out],
      workgroups: [1],
    });
    const [data] = await this.gpu.read([{ buffer: this.out, elements: (steps + 1) * NET222_RECORD }]);
    const v = new Float32Array(data!);
    return Array.from({ length: steps + 1 }, (_, s): StepRecord => {
      const at = (k: number) => v[s * NET222_RECORD + k]!;
      return {
        step: s,
        weights: Object.fromEntries(WEIGHT_NAMES.map((w, k) => [w, at(k)])) as Weights,
        forward: Object.fromEntries(FORWARD_NAMES.map((name, k) => [name, at(8 + k)])) as Forward,
        gradients: Object.fromEntries(WEIGHT_NAMES.map((w, k) => [w, at(19 + k)])) as Gradients,
      };
    });
  }

  async forward(c: Net222Config): Promise<Forward> {
    return (await this.run(c, 0, 0))[0]!.forward;
  }

  async gradients(c: Net222Config): Promise<Gradients> {
    return (await this.run(c, 0, 0))[0]!.gradients;
  }

  async step(c: Net222Config, lr: number): Promise<Weights> {
    return (await this.run(c, lr, 1))[1]!.weights;
  }

  async train(config: Net222Config, lr: number, steps: number): Promise<StepRecord[]> {
    if (!Number.isInteger(steps) || steps < 0)
      throw new Error(`webgpu 2-2-2: steps must be a non-negative integer, got ${steps}`);
    const records: StepRecord[] = [];
    let c = config;
    for (let done = 0; records.length === 0 || done < steps; ) {
      const k = Math.min(CHUNK, steps - done);
      const chunk = await this.run(c, lr, k);
      // Each chunk starts from the previous one's last weights (float32, read back exactly): drop that repeat.
      for (const r of records.length ? chunk.slice(1) : chunk) records.push({ ...r, step: records.length });
      done += k;
      c = { ...c, ...chunk.at(-1)!.weights };
    }
    return records;
  }

  dispose(): void {
    this.gpu.release(this.cfg);
    this.gpu.release(this.out);
    this.cfg = this.out = null;
  }
}
