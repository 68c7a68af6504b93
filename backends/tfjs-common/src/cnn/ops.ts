import * as tf from "@tensorflow/tfjs";

/**
 * Building blocks the CNN layers share, on kernels every tfjs backend has (NHWC activations); the choices were
 * measured on the wasm backend, the slowest to get them wrong:
 * per-channel sums as xᵀ·1, a GEMM against a cached column of ones (measured at batch 128, 28×28×16: ~2 ms, vs
 * ~13 ms for the Sum kernel, which transposes the reduced axis innermost first, and ~26 ms for 1ᵀ·x, where
 * XNNPACK repacks the big operand as weights on every call), and the convolution gradients expressed as forward convolutions, because wasm has
 * no Conv2DBackpropFilter and its Conv2DBackpropInput is ~10× slower than its forward Conv2D.
 */

/** Σ over all rows of x [m, c] → [1, c] as a GEMM; `onesCol` is [m, 1]. */
export function channelSum(x2d: tf.Tensor2D, onesCol: tf.Tensor2D): tf.Tensor2D {
  return tf.reshape(tf.matMul(x2d, onesCol, true, false), [1, x2d.shape[1]]);
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
  const g = tf.conv2d(xT, dyT, 1, [[0, 0], [p, p], [p, p], [0, 0]]);
  return tf.transpose(g, [1, 2, 0, 3]);
}

/** ∂L/∂x of a stride-1 "same" convolution: dy convolved with the 180°-rotated, in/out-swapped filter. */
export function conv2dInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
  const rotated = tf.reverse(tf.transpose(filter, [0, 1, 3, 2]), [0, 1]);
  return tf.conv2d(dy, rotated, 1, "same");
}

/**
 * ∂L/∂input of a size×size, stride-size max pool: each window's dy goes to its FIRST maximum in row-major window
 * order, as PyTorch does (the spec's tie rule). tfjs's MaxPoolGrad kernels send tied maxima's dy elsewhere, so the
 * kernel gets a tie-free stand-in for the input: score = rank·(s²+1) where the input equals its window's max and
 * rank otherwise, rank = s²−k at row-major window position k; the score's unique window maximum is the input's
 * first maximum. Windows are a free reshape of NHWC: [n·H/s, s, W/s, s, C]. Built from arithmetic only: wasm's
 * comparison kernels (Equal, GreaterEqual) have no fast broadcasting path (~20× slower here).
 */
export function maxPoolGrad(dy: tf.Tensor4D, input: tf.Tensor4D, output: tf.Tensor4D, size: number): tf.Tensor4D {
  const [n, h, w, c] = input.shape;
  if (h % size !== 0 || w % size !== 0) throw new Error(`maxPoolGrad: input ${h}×${w} is not a multiple of the window ${size}`);
  return tf.tidy(() => {
    const rows = n * (h / size), cols = w / size, k = size * size;
    // max − x is exactly 0 at the window's maxima and > 0 elsewhere; step(·, alpha) maps those to alpha and 1.
    const belowMax = tf.sub(tf.reshape(output, [rows, 1, cols, 1, c]), tf.reshape(input, [rows, size, cols, size, c]));
    const rank = tf.tensor(Array.from({ length: k }, (_, i) => k - i), [1, size, 1, size, 1], "float32");
    const score = tf.reshape(tf.mul(tf.step(belowMax, k + 1), rank), [n, h, w, c]) as tf.Tensor4D;
    const best = tf.maxPool(score, size, size, "valid");
    return tf.engine().runKernel(tf.MaxPoolGrad, { dy, input: score, output: best }, { filterSize: size, strides: size, pad: "valid" }) as tf.Tensor4D;
  });
}
