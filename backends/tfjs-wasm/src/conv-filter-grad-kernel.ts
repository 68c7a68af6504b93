import * as tf from "@tensorflow/tfjs";

/**
 * tfjs 4.22's wasm backend has no Conv2DBackpropFilter kernel, so autodiff through tf.conv2d (tf.grad,
 * tf.variableGrads, layers' fit) throws on wasm. This registers one built from wasm kernels only
 * (Transpose, Conv2D): the filter gradient is a forward convolution over transposed tensors,
 *   dW[a, b, ci, co] = Σ_{n,h,w} x[n, h·s + a − pt, w·s + b − pl, ci] · dy[n, h, w, co]
 * computed as conv2d(xᵀ [Ci, H, W, N], dyᵀ [Ho, Wo, N, Co]) → [Ci, kh, kw, Co]. Stride 1 and dilation 1
 * (what this CNN uses); other configurations throw rather than compute something wrong.
 */
const BACKEND = "wasm";

type KernelFn = (args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}) => tf.TensorInfo | tf.TensorInfo[];

function wasmKernel(name: string): KernelFn {
  const k = tf.getKernel(name, BACKEND);
  if (!k) throw new Error(`tfjs wasm backend has no ${name} kernel`);
  return k.kernelFunc as KernelFn;
}

function one(t: tf.TensorInfo | tf.TensorInfo[]): tf.TensorInfo {
  if (Array.isArray(t)) throw new Error("expected one output");
  return t;
}

export function registerConv2dFilterGrad(): void {
  if (tf.getKernel(tf.Conv2DBackpropFilter, BACKEND)) return;
  const transpose = wasmKernel(tf.Transpose);
  const conv2d = wasmKernel(tf.Conv2D);
  tf.registerKernel({
    kernelName: tf.Conv2DBackpropFilter,
    backendName: BACKEND,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      const [kh, kw] = a.filterShape;
      const strides = typeof a.strides === "number" ? [a.strides, a.strides] : a.strides;
      if (strides[0] !== 1 || strides[1] !== 1)
        throw new Error("Conv2DBackpropFilter (wasm, nnspec): only stride 1 is supported");
      if (a.dataFormat !== "NHWC") throw new Error("Conv2DBackpropFilter (wasm, nnspec): only NHWC is supported");
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        a.filterShape,
        1,
        1,
        a.pad,
        a.dimRoundingMode,
      );
      const { top, bottom, left, right } = info.padInfo;
      const xT = one(transpose({ inputs: { x }, backend, attrs: { perm: [3, 1, 2, 0] } }));
      const dyT = one(transpose({ inputs: { x: dy }, backend, attrs: { perm: [1, 2, 0, 3] } }));
      const g = one(
        conv2d({
          inputs: { x: xT, filter: dyT },
          backend,
          attrs: {
            strides: 1,
            pad: [
              [0, 0],
              [top, bottom],
              [left, right],
              [0, 0],
            ],
            dataFormat: "NHWC",
            dilations: 1,
          },
        }),
      );
      if (g.shape[1] !== kh || g.shape[2] !== kw)
        throw new Error(
          `Conv2DBackpropFilter (wasm, nnspec): got a ${g.shape[1]}×${g.shape[2]} gradient for a ${kh}×${kw} filter`,
        );
      const out = one(transpose({ inputs: { x: g }, backend, attrs: { perm: [1, 2, 0, 3] } }));
      const b = backend as { disposeData(id: tf.DataId): void };
      for (const t of [xT, dyT, g]) b.disposeData(t.dataId);
      return out;
    },
  });
}
