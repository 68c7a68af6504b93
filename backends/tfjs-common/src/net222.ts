import * as tf from "@tensorflow/tfjs";
import {
  weightsOf,
  type Forward,
  type Gradients,
  type Net222Config,
  type Net222Ops,
  type StepRecord,
  type Weights,
} from "@nnspec/spec";

/**
 * The 2-2-2 network as tfjs float32 tensors: two dense sigmoid layers on a column vector, squared error, and
 * the weight gradients from tfjs's autodiff (tf.grads) rather than from the hand-derived formulas.
 */
interface Evaluated {
  forward: Forward;
  gradients: Gradients;
}

/** Read back asynchronously: tfjs-webgpu has no synchronous GPU read in Node (its readSync draws through an OffscreenCanvas). */
async function evaluate(c: Net222Config): Promise<Evaluated> {
  const result = tf.tidy(() => {
    const x = tf.tensor2d([c.i1, c.i2], [2, 1]);
    const target = tf.tensor2d([c.t1, c.t2], [2, 1]);
    const W1 = tf.tensor2d([c.w1, c.w2, c.w3, c.w4], [2, 2]); // row = hidden unit
    const W2 = tf.tensor2d([c.w5, c.w6, c.w7, c.w8], [2, 2]); // row = output unit
    const layers = (w1: tf.Tensor, w2: tf.Tensor) => {
      const h = tf.add(tf.matMul(w1 as tf.Tensor2D, x), c.b1);
      const ah = tf.sigmoid(h);
      const o = tf.add(tf.matMul(w2 as tf.Tensor2D, ah as tf.Tensor2D), c.b2);
      const ao = tf.sigmoid(o);
      const E = tf.mul(tf.squaredDifference(target, ao), 0.5);
      return { h, ah, o, ao, E };
    };
    const f = layers(W1, W2);
    const [gW1, gW2] = tf.grads((w1: tf.Tensor, w2: tf.Tensor) => tf.sum(layers(w1, w2).E))([W1, W2]);
    return tf.concat([
      f.h,
      f.ah,
      f.o,
      f.ao,
      f.E,
      tf.sum(f.E).reshape([1, 1]),
      gW1!.reshape([4, 1]),
      gW2!.reshape([4, 1]),
    ]);
  });
  const v = await result.data();
  result.dispose();
  const at = (i: number) => v[i]!;
  return {
    forward: {
      h1: at(0),
      h2: at(1),
      a_h1: at(2),
      a_h2: at(3),
      o1: at(4),
      o2: at(5),
      a_o1: at(6),
      a_o2: at(7),
      E1: at(8),
      E2: at(9),
      E_total: at(10),
    },
    gradients: { w1: at(11), w2: at(12), w3: at(13), w4: at(14), w5: at(15), w6: at(16), w7: at(17), w8: at(18) },
  };
}

/** w ← w − η·g in float32 (the backend's precision), on tensors. */
async function descend(c: Net222Config, g: Gradients, lr: number): Promise<Net222Config> {
  const w = weightsOf(c);
  const names = Object.keys(w) as (keyof Weights)[];
  const t = tf.tidy(() => tf.sub(tf.tensor1d(names.map((k) => w[k])), tf.mul(tf.tensor1d(names.map((k) => g[k])), lr)));
  const next = await t.data();
  t.dispose();
  const out = { ...c };
  names.forEach((k, i) => {
    out[k] = next[i]!;
  });
  return out;
}

export const net222Ops: Net222Ops = {
  async forward(c) {
    return (await evaluate(c)).forward;
  },
  async gradients(c) {
    return (await evaluate(c)).gradients;
  },
  async step(c, lr) {
    return weightsOf(await descend(c, (await evaluate(c)).gradients, lr));
  },
  async train(config, lr, steps) {
    const records: StepRecord[] = [];
    let c = config;
    for (let step = 0; step <= steps; step++) {
      const r = await evaluate(c);
      records.push({ step, weights: weightsOf(c), forward: r.forward, gradients: r.gradients });
      if (step < steps) c = await descend(c, r.gradients, lr);
    }
    return records;
  },
};
