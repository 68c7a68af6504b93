import type { Arr } from "./arrays.ts";
import { gemmNT } from "./gemm.ts";
import { im2col, im2colT } from "./im2col.ts";

/**
 * 3×3 / stride 1 / pad 1 convolution over a range of images [i0, i1) of an NCHW batch. Pure functions over
 * typed arrays so the main thread and the worker run the same code on their halves of a batch.
 */
export interface ConvGeometry {
  readonly cin: number;
  readonly cout: number;
  readonly H: number;
  readonly W: number;
}

/** Per-thread scratch, sized for one image. */
export class ConvScratch {
  private colsT: Arr | null = null;
  private cols: Arr | null = null;
  private dcolsT: Arr | null = null;
  constructor(private readonly alloc: (n: number) => Arr) {}
  private sized(cur: Arr | null, n: number): Arr {
    return cur && cur.length >= n ? cur : this.alloc(n);
  }
  forCols(g: ConvGeometry): { colsT: Arr; cols: Arr; dcolsT: Arr } {
    const P = g.H * g.W;
    this.colsT = this.sized(this.colsT, P * g.cin * 9);
    this.cols = this.sized(this.cols, P * g.cin * 9);
    this.dcolsT = this.sized(this.dcolsT, P * g.cout * 9);
    return { colsT: this.colsT, cols: this.cols, dcolsT: this.dcolsT };
  }
}

/** out[i] = W ⋆ x[i] + b for i in [i0, i1): im2col then one GEMM per image (16 × HW × 9·cin). */
export function convForwardRange(
  g: ConvGeometry,
  x: Arr,
  weight: Arr,
  bias: Arr,
  out: Arr,
  i0: number,
  i1: number,
  s: ConvScratch,
): void {
  const { cin, cout, H, W } = g;
  const P = H * W,
    K = cin * 9;
  const { colsT } = s.forCols(g);
  for (let i = i0; i < i1; i++) {
    im2colT(x, i * cin * P, cin, H, W, colsT);
    gemmNT(cout, P, K, weight, 0, colsT, 0, out, i * cout * P, false, bias);
  }
}

/** The kernel transposed (in↔out) and rotated 180°: the input gradient is the forward conv of dy with it. */
export function flipKernel(g: ConvGeometry, w: Arr, wf: Arr): void {
  const { cin, cout } = g;
  for (let ci = 0; ci < cin; ci++)
    for (let co = 0; co < cout; co++)
      for (let t = 0; t < 9; t++) {
        wf[(ci * cout + co) * 9 + t] = w[(co * cin + ci) * 9 + 8 - t]!;
      }
}

/**
 * Gradients for images [i0, i1): gW and gB are accumulated (caller zeroes them), dx is written when given.
 * gW[co, k] = Σ_p dy[co, p]·cols[k, p] reduces over pixels, so it takes the tap-major patch layout.
 */
export function convBackwardRange(
  g: ConvGeometry,
  x: Arr,
  dy: Arr,
  wflip: Arr | null,
  dx: Arr | null,
  gW: Float64Array,
  gB: Float64Array,
  i0: number,
  i1: number,
  s: ConvScratch,
): void {
  const { cin, cout, H, W } = g;
  const P = H * W,
    K = cin * 9;
  const { cols, dcolsT } = s.forCols(g);
  for (let i = i0; i < i1; i++) {
    const dOff = i * cout * P;
    for (let co = 0; co < cout; co++) {
      let sum = 0;
      const o = dOff + co * P;
      for (let p = 0; p < P; p++) sum += dy[o + p]!;
      gB[co] = gB[co]! + sum;
    }
    im2col(x, i * cin * P, cin, H, W, cols);
    gemmNT(cout, K, P, dy, dOff, cols, 0, gW, 0, true, null);
    if (dx && wflip) {
      im2colT(dy, dOff, cout, H, W, dcolsT);
      gemmNT(cin, P, cout * 9, wflip, 0, dcolsT, 0, dx, i * cin * P, false, null);
    }
  }
}
