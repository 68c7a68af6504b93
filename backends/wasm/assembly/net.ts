// The CNN's schedule: forward (train or eval) and backward through all layers, run by every thread of a job on
// its own slice of the batch. Threads meet at a barrier only where BatchNorm needs batch-wide sums and at the
// final gradient reduction; everything else is per image.
import {
  BN_ALPHA, BN_INVSTD, BN_MEAN, BN_MEAN_LO, BN_RMEAN, BN_SUM, BN_RVAR, BN_SHIFT, Buf, CONV_LAYERS, FC_BIAS_AT, FC_WEIGHT_AT, J_DROP_HASH,
  J_DROP_SCALE, J_DROP_THRESH, J_DROPOUT, J_LOSS, J_N, J_OP, J_THREADS, OP_BACKWARD, OP_FORWARD_EVAL,
  OP_FORWARD_TRAIN, PARAM_COUNT, blockSize, bnBiasAt, bnState, bnWeightAt, buf, convBiasAt, convWeightAt, ctl,
  WINO_DU, jobI32, partial, scratch, stride, uBwd, uFwd, wBwd, wFwd, winoWork,
} from "./memory-map";
import { winograd3x3x16, winogradFilter, winogradFilterGrad } from "./winograd";
import { barrier, sliceStart } from "./sync";
import { conv3x3x1, conv3x3x1Filter, conv3x3x16, conv3x3x16Filter, packWeights } from "./conv";
import { bnReluBackward, bnReluBackwardSums, bnReluForward, channelSums, zeroF64 } from "./bn";
import { dropout, maxPoolBackward, maxPoolForward } from "./pool";
import { gapForward, headBackward, linearLogSoftmax } from "./head";
import { Kernel, mark, markStart } from "./profile";

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

// This thread's scratch: the BN coefficients it applies (16 f32 each) and its share of the loss.
const S_MEAN: usize = 0;
const S_ALPHA: usize = 64;
const S_SHIFT: usize = 128;
const S_GMEAN: usize = 192;
const S_K: usize = 256;
const S_SCALE: usize = 320;
const S_MEAN64: usize = 384; // 16 f64
const S_LOSS: usize = 512; // f64
const S_GMEAN_LO: usize = 576;

@inline function param(at: i32): usize {
  return buf(Buf.PARAMS) + (<usize>at << 2);
}

/** The padded input of conv block k: the image, a block output, or a pool output after dropout. */
function inputBuf(k: i32): Buf {
  if (k == 1) return Buf.X0;
  if (k == 4) return Buf.P1;
  if (k == 7) return Buf.P2;
  return <Buf>(Buf.A1 + k - 2);
}
@inline function zBuf(k: i32): Buf {
  return <Buf>(Buf.Z1 + k - 1);
}
@inline function aBuf(k: i32): Buf {
  return <Buf>(Buf.A1 + k - 1);
}

/** Entry point of every thread of a job (its kind and size are in the control block). */
export function run(tid: i32): void {
  const op = jobI32(J_OP);
  if (op == OP_FORWARD_TRAIN) forward(tid, true);
  else if (op == OP_FORWARD_EVAL) forward(tid, false);
  else if (op == OP_BACKWARD) backward(tid);
}

/** 28×28 input images → the zero-bordered 30×30 layout conv1 reads. */
function padInput(src: usize, dst: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    for (let y = 0; y < 28; y++) {
      memory.copy(dst + <usize>(i * 900 + (y + 1) * 30 + 1) * 4, src + <usize>(i * 784 + y * 28) * 4, 28 * 4);
    }
  }
}

/**
 * This thread's BN coefficients for block k into its scratch (alpha = invstd·γ, shift = β − mean·alpha).
 * Train: batch statistics (two barriers: mean, then the sum of squared deviations — two passes keep float32 exact
 * enough where E[z²] − mean² would cancel); thread 0 keeps mean and invstd for backward and updates the running
 * statistics (running_var takes the unbiased variance). Eval: the running statistics.
 */
function bnCoefficients(k: i32, tid: i32, train: bool, n: i32, i0: i32, i1: i32): void {
  const sc = scratch(tid), st = bnState(k), S = blockSize(k);
  const gamma = param(bnWeightAt(k)), beta = param(bnBiasAt(k));
  if (!train) {
    for (let c: usize = 0; c < 16; c++) {
      const alpha = <f64>load<f32>(gamma + c * 4) / Math.sqrt(<f64>load<f32>(st + BN_RVAR + c * 4) + BN_EPS);
      store<f32>(sc + S_ALPHA + c * 4, <f32>alpha);
      store<f32>(sc + S_SHIFT + c * 4, <f32>(<f64>load<f32>(beta + c * 4) - <f64>load<f32>(st + BN_RMEAN + c * 4) * alpha));
    }
    return;
  }
  const threads = jobI32(J_THREADS);
  const count = <f64>n * <f64>(S * S);
  const z = buf(zBuf(k)), zs = stride(zBuf(k));
  // sums in the first half of this thread's first partial set, squared deviations in the second half: a thread
  // that runs ahead only ever overwrites the half the others have finished reading
  const mine = partial(tid);
  zeroF64(mine, 16);
  channelSums(z, zs, S, i0, i1, 0, mine);
  barrier();
  const means = sc + S_MEAN64;
  for (let c: usize = 0; c < 16; c++) {
    let s: f64 = 0;
    for (let t = 0; t < threads; t++) s += load<f64>(partial(t) + c * 8);
    store<f64>(means + c * 8, s / count);
    store<f32>(sc + S_MEAN + c * 4, <f32>(s / count));
    if (tid == 0) store<f64>(st + BN_SUM + c * 8, s);
  }
  zeroF64(mine + 128, 16);
  channelSums(z, zs, S, i0, i1, sc + S_MEAN, mine + 128);
  barrier();
  for (let c: usize = 0; c < 16; c++) {
    let ss: f64 = 0;
    for (let t = 0; t < threads; t++) ss += load<f64>(partial(t) + 128 + c * 8);
    const mean = load<f64>(means + c * 8);
    const invstd = 1.0 / Math.sqrt(ss / count + BN_EPS);
    const alpha = invstd * <f64>load<f32>(gamma + c * 4);
    store<f32>(sc + S_ALPHA + c * 4, <f32>alpha);
    store<f32>(sc + S_SHIFT + c * 4, <f32>(<f64>load<f32>(beta + c * 4) - mean * alpha));
    if (tid == 0) {
      store<f32>(st + BN_MEAN + c * 4, <f32>mean);
      store<f32>(st + BN_MEAN_LO + c * 4, <f32>(mean - <f64><f32>mean));
      store<f32>(st + BN_INVSTD + c * 4, <f32>invstd);
      store<f32>(st + BN_ALPHA + c * 4, <f32>alpha);
      store<f32>(st + BN_SHIFT + c * 4, <f32>(<f64>load<f32>(beta + c * 4) - mean * alpha));
      const unbiased = count > 1 ? ss / (count - 1) : NaN;
      const rm = st + BN_RMEAN + c * 4, rv = st + BN_RVAR + c * 4;
      store<f32>(rm, <f32>(BN_MOMENTUM * mean + (1 - BN_MOMENTUM) * <f64>load<f32>(rm)));
      store<f32>(rv, <f32>(BN_MOMENTUM * unbiased + (1 - BN_MOMENTUM) * <f64>load<f32>(rv)));
    }
  }
}

function applyDropout(layer: i32, src: usize, srcBorder: i32, dst: usize, dstBorder: i32, H: i32, mult: usize, train: bool, i0: i32, i1: i32): void {
  const on = train && jobI32(J_DROPOUT) != 0;
  const c = ctl();
  const at = <usize>layer << 2;
  dropout(src, srcBorder, dst, dstBorder, H, mult, on, load<u32>(c + J_DROP_HASH + at), load<u32>(c + J_DROP_THRESH + at),
    load<f32>(c + J_DROP_SCALE + at), i0, i1);
}

function forward(tid: i32, train: bool): void {
  const n = jobI32(J_N), threads = jobI32(J_THREADS);
  const i0 = sliceStart(n, tid, threads), i1 = sliceStart(n, tid + 1, threads);
  const sc = scratch(tid);
  markStart(tid);
  padInput(buf(Buf.INPUT), buf(Buf.X0), i0, i1);
  for (let k = 1; k <= CONV_LAYERS; k++) {
    const S = blockSize(k), z = buf(zBuf(k)), zs = stride(zBuf(k));
    const bias = param(convBiasAt(k));
    if (k == 1) conv3x3x1(buf(Buf.X0), wFwd(1), bias, z, zs, i0, i1);
    else conv16(k, false, buf(inputBuf(k)), stride(inputBuf(k)), bias, z, zs, tid, i0, i1);
    mark(tid, Kernel.ConvForward);
    bnCoefficients(k, tid, train, n, i0, i1);
    mark(tid, Kernel.BnStats);
    bnReluForward(z, zs, S, sc + S_ALPHA, sc + S_SHIFT, buf(aBuf(k)), stride(aBuf(k)), i0, i1);
    mark(tid, Kernel.BnReluForward);
    if (k == 3) {
      maxPoolForward(buf(Buf.A3), stride(Buf.A3), 28, buf(Buf.P1), stride(Buf.P1), buf(Buf.IDX1), stride(Buf.IDX1), i0, i1);
      mark(tid, Kernel.PoolForward);
      applyDropout(0, buf(Buf.P1), 1, buf(Buf.P1), 1, 14, buf(Buf.M1), train, i0, i1);
      mark(tid, Kernel.Dropout);
    } else if (k == 6) {
      maxPoolForward(buf(Buf.A6), stride(Buf.A6), 14, buf(Buf.P2), stride(Buf.P2), buf(Buf.IDX2), stride(Buf.IDX2), i0, i1);
      mark(tid, Kernel.PoolForward);
      applyDropout(1, buf(Buf.P2), 1, buf(Buf.P2), 1, 7, buf(Buf.M2), train, i0, i1);
      mark(tid, Kernel.Dropout);
    }
  }
  applyDropout(2, buf(Buf.A9), 1, buf(Buf.D3), 0, 7, buf(Buf.M3), train, i0, i1);
  mark(tid, Kernel.Dropout);
  gapForward(buf(Buf.D3), buf(Buf.GAP), i0, i1);
  linearLogSoftmax(buf(Buf.GAP), param(FC_WEIGHT_AT), param(FC_BIAS_AT), buf(Buf.LOGITS), buf(Buf.LOGP), i0, i1);
  mark(tid, Kernel.HeadForward);
}

function backward(tid: i32): void {
  const n = jobI32(J_N), threads = jobI32(J_THREADS);
  const i0 = sliceStart(n, tid, threads), i1 = sliceStart(n, tid + 1, threads);
  const sc = scratch(tid);
  const P = <usize>PARAM_COUNT << 2;
  const tg = buf(Buf.THREAD_GRADS) + <usize>tid * P; // this thread's partial gradients
  markStart(tid);
  memory.fill(tg, 0, P);

  // Gradient buffers shared by all layers: their images sit the largest layer's stride apart (see conv.ts).
  let da = buf(Buf.DA), other = buf(Buf.DA2);
  const ds = stride(Buf.DA), dz = buf(Buf.DZ), dzs = stride(Buf.DZ);
  const loss = headBackward(buf(Buf.LOGP), buf(Buf.LABELS), buf(Buf.GAP), param(FC_WEIGHT_AT), buf(Buf.M3), n,
    tg + (<usize>FC_WEIGHT_AT << 2), tg + (<usize>FC_BIAS_AT << 2), da, ds, i0, i1);
  store<f64>(sc + S_LOSS, loss);
  mark(tid, Kernel.HeadBackward);

  for (let k = CONV_LAYERS; k >= 1; k--) {
    const S = blockSize(k), st = bnState(k);
    const z = buf(zBuf(k)), zs = stride(zBuf(k)), a = buf(aBuf(k)), aS = stride(aBuf(k));
    const count = <f64>n * <f64>(S * S);
    const set: usize = <usize>(k & 1) * 256; // alternate partial sets between layers (see PARTIAL_BYTES)
    const mine = partial(tid) + set;
    zeroF64(mine, 32);
    bnReluBackwardSums(da, ds, a, aS, z, zs, S, st + BN_MEAN, i0, i1, mine);
    barrier();
    mark(tid, Kernel.BnBackwardSums);
    if (k == CONV_LAYERS && tid == 0) {
      let total: f64 = 0;
      for (let t = 0; t < threads; t++) total += load<f64>(scratch(t) + S_LOSS);
      store<f64>(ctl() + J_LOSS, total / <f64>n);
    }
    const gamma = param(bnWeightAt(k));
    for (let c: usize = 0; c < 16; c++) {
      let sg: f64 = 0, sgx: f64 = 0;
      for (let t = 0; t < threads; t++) {
        sg += load<f64>(partial(t) + set + c * 8);
        sgx += load<f64>(partial(t) + set + 128 + c * 8);
      }
      const invstd = <f64>load<f32>(st + BN_INVSTD + c * 4);
      const gmean = sg / count, kk = sgx * invstd * invstd / count, scale = invstd * <f64>load<f32>(gamma + c * 4);
      store<f32>(sc + S_GMEAN + c * 4, <f32>gmean);
      store<f32>(sc + S_GMEAN_LO + c * 4, <f32>(gmean - <f64><f32>gmean));
      store<f32>(sc + S_K + c * 4, <f32>kk);
      store<f32>(sc + S_SCALE + c * 4, <f32>scale);
      if (tid == 0) {
        store<f32>(tg + (<usize>bnWeightAt(k) << 2) + c * 4, <f32>(sgx * invstd));
        store<f32>(tg + (<usize>bnBiasAt(k) << 2) + c * 4, <f32>sg);
        // The conv bias gradient Σ dz, with dz = scale·(g − gmean) − scale·k·(z − mean), summed in f64 by
        // linearity from the exact f64 batch sums Σg (above) and Σz (forward): rounding each dz to f32 and adding
        // ~10⁵ of them would leave float32 noise in a sum that cancels to ~0.
        const sz = load<f64>(st + BN_SUM + c * 8);
        const db = scale * (sg - count * gmean) - scale * kk * (sz - count * (sz / count));
        store<f32>(tg + (<usize>convBiasAt(k) << 2) + c * 4, <f32>db);
      }
    }
    bnReluBackward(da, ds, a, aS, z, zs, S, st + BN_MEAN, st + BN_MEAN_LO, sc + S_GMEAN, sc + S_GMEAN_LO, sc + S_K, sc + S_SCALE,
      dz, dzs, i0, i1);
    mark(tid, Kernel.BnReluBackward);

    const gw = tg + (<usize>convWeightAt(k) << 2);
    if (k == 1) {
      conv3x3x1Filter(buf(Buf.X0), dz, dzs, gw, i0, i1);
      mark(tid, Kernel.ConvFilterGrad);
      break;
    }
    if (useWinograd(k)) winogradFilterGrad(buf(inputBuf(k)), stride(inputBuf(k)), S, dz, dzs, gw, winoWork(tid) + WINO_DU, winoWork(tid), i0, i1);
    else conv3x3x16Filter(buf(inputBuf(k)), stride(inputBuf(k)), S, dz, dzs, gw, i0, i1);
    mark(tid, Kernel.ConvFilterGrad);
    // gradient to this block's input (unpadded S×S), then through the pool and its dropout where there is one
    conv16(k, true, dz, dzs, buf(Buf.ZERO), other, ds, tid, i0, i1);
    mark(tid, Kernel.ConvInputGrad);
    if (k == 4) maxPoolBackward(other, ds, buf(Buf.M1), buf(Buf.IDX1), stride(Buf.IDX1), 28, da, ds, i0, i1);
    else if (k == 7) maxPoolBackward(other, ds, buf(Buf.M2), buf(Buf.IDX2), stride(Buf.IDX2), 14, da, ds, i0, i1);
    if (k == 4 || k == 7) mark(tid, Kernel.PoolBackward);
    else {
      const t = da;
      da = other;
      other = t;
    }
  }
  barrier();
  reduceGradients(tid, threads);
  mark(tid, Kernel.Reduce);
}

/**
 * GRADS = Σ over threads of their partial gradients, each thread summing a slice of the parameters. Conv weights
 * are accumulated in the kernels' [tap][ci][co] packing and are written back in PyTorch's [co][ci][ky][kx] order.
 */
function reduceGradients(tid: i32, threads: i32): void {
  const j0 = sliceStart(PARAM_COUNT, tid, threads), j1 = sliceStart(PARAM_COUNT, tid + 1, threads);
  const P = <usize>PARAM_COUNT << 2;
  const tg = buf(Buf.THREAD_GRADS), out = buf(Buf.GRADS);
  for (let j = j0; j < j1; j++) {
    let src = j;
    for (let k = 1; k <= CONV_LAYERS; k++) {
      const w0 = convWeightAt(k), cin = k == 1 ? 1 : 16;
      if (j >= w0 && j < w0 + 144 * cin) {
        const local = j - w0;
        const co = local / (9 * cin), ci = (local / 9) % cin, tap = local % 9;
        src = w0 + (tap * cin + ci) * 16 + co;
        break;
      }
    }
    let s: f32 = 0;
    for (let t = 0; t < threads; t++) s += load<f32>(tg + <usize>t * P + (<usize>src << 2));
    store<f32>(out + (<usize>j << 2), s);
  }
}

/** Layers of even size run Winograd F(2×2, 3×3) (winograd.ts); the 7×7 layers the direct kernel (conv.ts). */
@inline function useWinograd(k: i32): bool {
  return k >= 2 && (blockSize(k) & 1) == 0;
}

/** A 16-channel conv of layer k: forward (weights as they are) or the gradient to its input (flipped weights). */
function conv16(k: i32, backward: bool, inp: usize, inImg: usize, bias: usize, out: usize, outImg: usize, tid: i32, i0: i32, i1: i32): void {
  const S = blockSize(k);
  if (useWinograd(k)) winograd3x3x16(inp, inImg, S, backward ? uBwd(k) : uFwd(k), bias, out, outImg, winoWork(tid), i0, i1);
  else conv3x3x16(inp, inImg, S, backward ? wBwd(k) : wFwd(k), bias, out, outImg, i0, i1);
}

/** Packs every conv layer's weights for the kernels (after a parameter change: creation and each SGD step). */
export function packAllWeights(): void {
  for (let k = 1; k <= CONV_LAYERS; k++) {
    packWeights(param(convWeightAt(k)), k == 1 ? 1 : 16, wFwd(k), wBwd(k));
    if (useWinograd(k)) {
      winogradFilter(wFwd(k), uFwd(k));
      winogradFilter(wBwd(k), uBwd(k));
    }
  }
}
