import * as tf from "@tensorflow/tfjs";

/**
 * Building blocks the CNN layers share, on kernels every tfjs backend has (NHWC activations); the choices were
 * measured on the wasm backend, the slowest to get them wrong:
 * per-channel sums by average pooling (channelSumByPool, ~0.3 ms at batch 128, 28×28×16 on wasm with 2 threads) or
 * as xᵀ·1, a GEMM against a cached column of ones (~2 ms; the Sum kernel, which transposes the reduced axis
 * innermost first, ~13 ms; 1ᵀ·x, where XNNPACK repacks the big operand as weights on every call, ~26 ms), and the
 * convolution gradients expressed as forward convolutions, because wasm has
 * no Conv2DBackpropFilter and its Conv2DBackpropInput is ~10× slower than its forward Conv2D.
 */

/** Σ over all rows of x [m, c] → [1, c] as a GEMM; `onesCol` is [m, 1]. */
export function channelSum(x2d: tf.Tensor2D, onesCol: tf.Tensor2D): tf.Tensor2D {
  return tf.reshape(tf.matMul(x2d, onesCol, true, false), [1, x2d.shape[1]]);
}

/**
 * Σ over all rows of x [m, c] → [1, c] by average pooling (XNNPACK's pooling on wasm: multi-threaded, ~5× faster
 * than the GEMM above at batch 128, 28×28×16): rows are viewed as [m/r, r, 1, c] with r the largest power of two
 * dividing m (≤ 1024), so dividing by r and multiplying back are exact; the m/r partial means are then summed by a
 * small GEMM. Two-level summation is also more accurate than one long dot product.
 */
export function channelSumByPool(x2d: tf.Tensor2D): tf.Tensor2D {
  const [m, c] = x2d.shape;
  let r = 1;
  while (r < 1024 && m % (2 * r) === 0) r *= 2;
  const q = m / r;
  return tf.tidy(() => {
    const means = tf.reshape(tf.avgPool(tf.reshape(x2d, [q, r, 1, c]) as tf.Tensor4D, [r, 1], 1, "valid"), [q, c]);
    return tf.mul(tf.matMul(tf.ones([1, q]), means), r) as tf.Tensor2D;
  });
}

/**
 * Σ over all rows of x [m, c] → [1, c] with the backend's Sum kernel. On WebGL that is a windowed multi-pass
 * reduction (error ~√m ulps), where a GEMM's shader accumulates all m rows in one loop (error ~m ulps): enough,
 * at m = 2·28·28, to move a BatchNorm output sitting 1e-6 above zero below it and flip its ReLU.
 */
export function channelSumByReduce(x2d: tf.Tensor2D): tf.Tensor2D {
  return tf.sum(x2d, 0, true);
}

/** PyTorch conv weight [out, in, kh, kw] → tfjs filter [kh, kw, in, out]. */
export function filterFromTorch(w: tf.Tensor, out: number, inC: number, k: number): tf.Tensor4D {
  return tf.transpose(tf.reshape(w, [out, inC, k, k]), [2, 3, 1, 0]);
}

/** tfjs filter [kh, kw, in, out] → PyTorch layout, flattened. */
export function filterToTorchFlat(f: tf.Tensor4D): tf.Tensor1D {
  return tf.reshape(tf.transpose(f, [3, 2, 0, 1]), [-1]);
}

/**
 * ∂L/∂W of a stride-1, zero-padded ("same", odd k) convolution, as one forward convolution over transposed
 * tensors: the input with channels as batch [Ci, H, W, N] convolved with dy as filter [H, W, N, Co] gives
 * [Ci, k, k, Co], i.e. dW[a, b, ci, co] = Σ_{n,h,w} x[n, h+a−p, w+b−p, ci] · dy[n, h, w, co].
 */
export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, k: number): tf.Tensor4D {
  const p = (k - 1) / 2;
  const xT = tf.transpose(x, [3, 1, 2, 0]);
  const dyT = tf.transpose(dy, [1, 2, 0, 3]);
  const g = tf.conv2d(xT, dyT, 1, [
    [0, 0],
    [p, p],
    [p, p],
    [0, 0],
  ]);
  return tf.transpose(g, [1, 2, 0, 3]);
}

/** ∂L/∂x of a stride-1 "same" convolution: dy convolved with the 180°-rotated, in/out-swapped filter. */
export function conv2dInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
  const rotated = tf.reverse(tf.transpose(filter, [0, 1, 3, 2]), [0, 1]);
  return tf.conv2d(dy, rotated, 1, "same");
}

/**
 * ∂L/∂input of a size×size, stride-size max pool: each window's dy goes to its FIRST maximum in row-major window
 * order, as PyTorch does (the spec's tie rule; tfjs's MaxPoolGrad kernels send tied maxima's dy elsewhere, and on
 * wasm the kernel alone costs ~4× this). A one-hot first-max mask from arithmetic only: with rank = s²−k at
 * row-major window position k, score = rank·(s²+1) where the input equals its window's max and rank elsewhere, so
 * the score's window maximum is unique and sits on the input's first maximum; scores are small integers, so
 * `score − (max score − ½)` is > 0 exactly there. Windows are a free reshape of NHWC: [n·H/s, s, W/s, s, C].
 * Comparison kernels are avoided on purpose: wasm's Equal/GreaterEqual have no fast broadcasting path (~20× slower).
 */
export function maxPoolGrad(dy: tf.Tensor4D, input: tf.Tensor4D, output: tf.Tensor4D, size: number): tf.Tensor4D {
  const [n, h, w, c] = input.shape;
  if (h % size !== 0 || w % size !== 0)
    throw new Error(`maxPoolGrad: input ${h}×${w} is not a multiple of the window ${size}`);
  return tf.tidy(() => {
    const rows = n * (h / size),
      cols = w / size,
      k = size * size;
    const windows = [rows, size, cols, size, c],
      pooled = [rows, 1, cols, 1, c];
    // max − x is exactly 0 at the window's maxima and > 0 elsewhere; step(·, alpha) maps those to alpha and 1.
    const belowMax = tf.sub(tf.reshape(output, pooled), tf.reshape(input, windows));
    const rank = tf.tensor(
      Array.from({ length: k }, (_, i) => k - i),
      [1, size, 1, size, 1],
      "float32",
    );
    const score = tf.mul(tf.step(belowMax, k + 1), rank);
    const threshold = tf.sub(tf.maxPool(tf.reshape(score, [n, h, w, c]) as tf.Tensor4D, size, size, "valid"), 0.5);
    const firstMax = tf.step(tf.sub(score, tf.reshape(threshold, pooled)));
    return tf.reshape(tf.mul(firstMax, tf.reshape(dy, pooled)), [n, h, w, c]) as tf.Tensor4D;
  });
}
