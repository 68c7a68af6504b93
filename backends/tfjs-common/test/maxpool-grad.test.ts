import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { mulberry32 } from "@nnspec/spec";
import { maxPoolGrad } from "../src/cnn/ops.ts";

await tf.setBackend("cpu");

/** Plain-JS 2×2 max-pool backward over NHWC: scan each window row-major, move only on a strictly larger value. */
function firstMaxGrad(x: Float32Array, dy: Float32Array, n: number, h: number, w: number, c: number) {
  const dx = new Float32Array(x.length);
  let tiedWindows = 0;
  const at = (b: number, i: number, j: number, ch: number) => ((b * h + i) * w + j) * c + ch;
  for (let b = 0; b < n; b++)
    for (let i = 0; i < h / 2; i++)
      for (let j = 0; j < w / 2; j++)
        for (let ch = 0; ch < c; ch++) {
          let best = at(b, 2 * i, 2 * j, ch),
            ties = 0;
          for (let a = 0; a < 2; a++)
            for (let d = 0; d < 2; d++) {
              const k = at(b, 2 * i + a, 2 * j + d, ch);
              if (x[k]! > x[best]!) best = k;
            }
          for (let a = 0; a < 2; a++)
            for (let d = 0; d < 2; d++) if (x[at(b, 2 * i + a, 2 * j + d, ch)] === x[best]) ties++;
          if (ties >= 2) tiedWindows++;
          dx[best] = dy[((b * (h / 2) + i) * (w / 2) + j) * c + ch]!;
        }
  return { dx, tiedWindows };
}

describe("tfjs maxPoolGrad", () => {
  it("routes each window's gradient to the first maximum in row-major order, ties included", () => {
    const [n, h, w, c] = [2, 6, 4, 3];
    const rand = mulberry32(11);
    // Values from a set of three so most windows hold tied maxima (in every position pattern).
    const x = Float32Array.from({ length: n * h * w * c }, () => [0.25, 0.5, 1.5][Math.floor(rand() * 3)]!);
    const dy = Float32Array.from({ length: (n * h * w * c) / 4 }, () => rand() * 2 - 1);
    const expected = firstMaxGrad(x, dy, n, h, w, c);
    expect(expected.tiedWindows).toBeGreaterThan(10);

    const xt = tf.tensor4d(x, [n, h, w, c]);
    const y = tf.maxPool(xt, 2, 2, "valid");
    const dx = maxPoolGrad(tf.tensor4d(dy, y.shape), xt, y, 2);
    // `+ 0` folds the mask's −0 (0 × negative dy) into +0: the same gradient.
    expect(Array.from(dx.dataSync(), (v) => v + 0)).toEqual(Array.from(expected.dx, (v) => v + 0));
  });

  it("rejects a window that does not tile the input", () => {
    const x = tf.zeros([1, 5, 4, 1]) as tf.Tensor4D;
    expect(() =>
      maxPoolGrad(tf.zeros([1, 2, 2, 1]) as tf.Tensor4D, x, tf.zeros([1, 2, 2, 1]) as tf.Tensor4D, 2),
    ).toThrow(/not a multiple/);
  });
});
