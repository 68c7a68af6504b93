// Where everything lives in the one shared linear memory.
//
// Every thread runs its own instance of this module on the same memory, and wasm globals are per instance, so no
// state may live in globals: the layout and the job parameters are stored in a control block at the start of the
// heap, which every instance reads. No allocator is used either (the stub runtime's bump pointer is a global too).
//
// Tensors of 16 channels are stored channels-last (NHWC): one pixel is 16 floats = 64 bytes = four f32x4 vectors.
// Inputs of 3×3 convolutions are stored with a one-pixel zero border ("padded"), so kernels need no bounds checks.

/** Channels of every hidden layer: 16 floats = four 128-bit vectors per pixel. */
export const C: i32 = 16;
/** Bytes per 16-channel pixel. */
export const PIX: usize = 64;
/** Most threads a model can use (sizes the per-thread scratch areas). */
export const MAX_THREADS: i32 = 64;
export const CONV_LAYERS: i32 = 9;
/** Parameters in PyTorch state_dict order: conv1 (144 + 16), bn1 (16 + 16), then eight blocks of conv (2304 + 16) + bn (16 + 16), then fc (160 + 10). */
export const PARAM_COUNT: i32 = 192 + 8 * 2352 + 170;
/** Spatial size of each conv block's output (index 1..9; index 0 unused). */
export function blockSize(k: i32): i32 {
  return k <= 3 ? 28 : k <= 6 ? 14 : 7;
}

/** Control block: the base of the heap, rounded to a cache line (identical in every instance). */
export function ctl(): usize {
  return (__heap_base + 63) & ~(<usize>63);
}

// ---- control block (byte offsets). The synchronisation words sit on separate 64-byte lines. ----
export const BAR_COUNT: usize = 0;
export const BAR_GEN: usize = 64;
/** Used by JavaScript only: job generation, threads finished, worker error, stop flag (src/threads.ts). */
export const JOB_GEN: usize = 128;
export const JOB_DONE: usize = 192;
export const JOB_ERROR: usize = 256;
export const JOB_STOP: usize = 288;
/** Job parameters (i32 / u32 / f32 slots). */
export const J_OP: usize = 320;
export const J_N: usize = 324;
export const J_THREADS: usize = 328;
export const J_DROPOUT: usize = 332; // 1 = apply dropout (train mode with a seed)
export const J_DROP_HASH: usize = 336; // 3 × u32: per-layer hash prefix of the mask rule (see dropout in pool.ts)
export const J_DROP_THRESH: usize = 348; // 3 × u32: keep when hash ≥ threshold
export const J_DROP_SCALE: usize = 360; // 3 × f32: 1 / (1 − p)
export const J_CAPACITY: usize = 372; // images the activation area holds
export const J_LOSS: usize = 384; // f64: mean NLL of the last backward
/** Buffer offsets (u32 slots, one per Buf: 47 of them, so they end before PROFILE). */
export const OFFSETS: usize = 512;
/** Profiling: J_PROFILE (i32) switches it on; PROFILE holds milliseconds per kernel (f64, see profile.ts). */
export const J_PROFILE: usize = 376;
export const PROFILE: usize = 768;
export const CTL_BYTES: usize = 1024;

export const OP_FORWARD_TRAIN: i32 = 1;
export const OP_FORWARD_EVAL: i32 = 2;
export const OP_BACKWARD: i32 = 3;

/** Every buffer, by slot in the control block's offset table. Z, A: one per conv block (index k − 1). */
export enum Buf {
  // fixed part (does not depend on the batch size)
  PARAMS, GRADS, MOMENTUM, THREAD_GRADS, W_FWD, W_BWD, WINO_FWD, WINO_BWD, BN_STATE, PARTIAL, SCRATCH, WINO_WORK, ZERO,
  // per-batch part
  INPUT, X0, IDX1, IDX2, P1, P2, M1, M2, M3, D3, GAP, LOGITS, LOGP, LABELS, DA, DA2, DZ,
  Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9,
  A1, A2, A3, A4, A5, A6, A7, A8, A9,
  END,
}

@inline export function buf(b: Buf): usize {
  return <usize>load<u32>(ctl() + OFFSETS + (<usize>b << 2));
}
@inline function setBuf(b: Buf, at: usize): void {
  store<u32>(ctl() + OFFSETS + (<usize>b << 2), <u32>at);
}
@inline export function jobI32(slot: usize): i32 {
  return load<i32>(ctl() + slot);
}

// Per-layer BN state: mean, invstd, alpha (= invstd·γ), shift (= β − mean·alpha), running mean, running var, and
// the batch mean's rounding residual (mean − f32(mean)), 16 f32 each; then Σz over the batch (16 f64).
export const BN_MEAN: usize = 0;
export const BN_INVSTD: usize = 64;
export const BN_ALPHA: usize = 128;
export const BN_SHIFT: usize = 192;
export const BN_RMEAN: usize = 256;
export const BN_RVAR: usize = 320;
export const BN_MEAN_LO: usize = 384;
export const BN_SUM: usize = 448;
export const BN_BYTES: usize = 576;
@inline export function bnState(k: i32): usize {
  return buf(Buf.BN_STATE) + <usize>(k - 1) * BN_BYTES;
}

// Packed weights per conv layer, 2304 floats (9 KiB) each: forward [tap][ci][co] and backward-to-input
// [tap][co][ci] with the taps flipped, so both directions run the same kernel with 16 output lanes.
export const W_PACKED_BYTES: usize = 2304 * 4;
@inline export function wFwd(k: i32): usize {
  return buf(Buf.W_FWD) + <usize>(k - 1) * W_PACKED_BYTES;
}
@inline export function wBwd(k: i32): usize {
  return buf(Buf.W_BWD) + <usize>(k - 1) * W_PACKED_BYTES;
}
/**
 * Winograd (winograd.ts): tiles per chunk, bytes between positions ξ in a chunk's V and M, and the per-thread work
 * area: V, then M (or the transformed output gradient D), then dU (16·16·16 f32) of the filter gradient.
 */
export const WINO_CHUNK: i32 = 64;
export const WINO_XI_STRIDE: usize = <usize>WINO_CHUNK * PIX + PIX; // + one line: the 16 positions must not alias in L1
export const WINO_DU: usize = 2 * 16 * WINO_XI_STRIDE;
export const WINO_WORK_BYTES: usize = WINO_DU + 16 * 16 * 16 * 4;
/** Bytes of one layer's transformed filter U[16][16][16]. */
export const WINO_U_BYTES: usize = 16 * 16 * 16 * 4;
/** Winograd-transformed filters (winograd.ts) of each layer, forward and backward-to-input; this thread's work area. */
@inline export function uFwd(k: i32): usize {
  return buf(Buf.WINO_FWD) + <usize>(k - 1) * WINO_U_BYTES;
}
@inline export function uBwd(k: i32): usize {
  return buf(Buf.WINO_BWD) + <usize>(k - 1) * WINO_U_BYTES;
}
@inline export function winoWork(tid: i32): usize {
  return buf(Buf.WINO_WORK) + <usize>tid * WINO_WORK_BYTES;
}

/** Offsets of each parameter tensor inside PARAMS / GRADS / MOMENTUM (floats). */
export function convWeightAt(k: i32): i32 {
  return k == 1 ? 0 : 192 + (k - 2) * 2352;
}
export function convBiasAt(k: i32): i32 {
  return convWeightAt(k) + (k == 1 ? 144 : 2304);
}
export function bnWeightAt(k: i32): i32 {
  return convBiasAt(k) + 16;
}
export function bnBiasAt(k: i32): i32 {
  return convBiasAt(k) + 32;
}
export const FC_WEIGHT_AT: i32 = 192 + 8 * 2352;
export const FC_BIAS_AT: i32 = FC_WEIGHT_AT + 160;

/**
 * Per thread: partial sums that the other threads read after a barrier, two sets of 32 f64 (a thread that runs ahead
 * into the next layer writes the other set while slower threads still read this one).
 */
export const PARTIAL_BYTES: usize = 512;
@inline export function partial(tid: i32): usize {
  return buf(Buf.PARTIAL) + <usize>tid * PARTIAL_BYTES;
}
/** Per thread: private scratch (the BN coefficients it uses). */
export const SCRATCH_BYTES: usize = 1024;
@inline export function scratch(tid: i32): usize {
  return buf(Buf.SCRATCH) + <usize>tid * SCRATCH_BYTES;
}

/** Per-image bytes of each per-batch buffer. */
function perImage(b: Buf): usize {
  if (b == Buf.INPUT) return 784 * 4;
  if (b == Buf.X0) return 30 * 30 * 4;
  if (b == Buf.IDX1 || b == Buf.M1) return 14 * 14 * PIX;
  if (b == Buf.IDX2 || b == Buf.M2 || b == Buf.M3 || b == Buf.D3) return 7 * 7 * PIX;
  if (b == Buf.P1) return 16 * 16 * PIX;
  if (b == Buf.P2) return 9 * 9 * PIX;
  if (b == Buf.GAP) return PIX;
  if (b == Buf.LOGITS || b == Buf.LOGP) return 16 * 4; // 10 used, rows kept 64-byte aligned
  if (b == Buf.LABELS) return 4;
  if (b == Buf.DA || b == Buf.DA2) return 28 * 28 * PIX;
  if (b == Buf.DZ) return 30 * 30 * PIX;
  if (b >= Buf.Z1 && b <= Buf.Z9) {
    const s = <usize>blockSize(<i32>(b - Buf.Z1) + 1);
    return s * s * PIX;
  }
  // A1..A9: padded outputs of the conv blocks
  const s = <usize>blockSize(<i32>(b - Buf.A1) + 1) + 2;
  return s * s * PIX;
}

@inline function align64(x: usize): usize {
  return (x + 63) & ~(<usize>63);
}

/**
 * Lays out the fixed part for up to `threads` threads and the per-batch part for `capacity` images; returns the end
 * address (the memory must reach it before use). For a given thread count the fixed part never moves, so
 * parameters and optimizer state survive a re-plan for a bigger batch.
 */
export function plan(capacity: i32, threads: i32): usize {
  let at = ctl() + CTL_BYTES;
  const P = <usize>PARAM_COUNT * 4;
  for (let b = Buf.PARAMS; b < Buf.INPUT; b++) {
    setBuf(b, at);
    let bytes: usize = 0;
    if (b == Buf.PARAMS || b == Buf.GRADS || b == Buf.MOMENTUM) bytes = P;
    else if (b == Buf.THREAD_GRADS) bytes = P * <usize>threads;
    else if (b == Buf.W_FWD || b == Buf.W_BWD) bytes = W_PACKED_BYTES * CONV_LAYERS;
    else if (b == Buf.WINO_FWD || b == Buf.WINO_BWD) bytes = WINO_U_BYTES * CONV_LAYERS;
    else if (b == Buf.WINO_WORK) bytes = <usize>threads * WINO_WORK_BYTES;
    else if (b == Buf.BN_STATE) bytes = BN_BYTES * CONV_LAYERS;
    else if (b == Buf.PARTIAL) bytes = <usize>MAX_THREADS * PARTIAL_BYTES;
    else if (b == Buf.SCRATCH) bytes = <usize>MAX_THREADS * SCRATCH_BYTES;
    else if (b == Buf.ZERO) bytes = PIX;
    at = align64(at + bytes);
  }
  for (let b = Buf.INPUT; b < Buf.END; b++) {
    setBuf(b, at);
    at = align64(at + perImage(b) * <usize>capacity);
  }
  store<i32>(ctl() + J_CAPACITY, capacity);
  store<i32>(ctl() + J_THREADS, threads);
  return at;
}

/** Start and length (bytes) of the per-batch area, which a re-plan zeroes (borders of padded buffers must be 0). */
export function batchAreaStart(): usize {
  return buf(Buf.INPUT);
}

/** Bytes per image of a per-batch buffer (image stride). */
export function stride(b: Buf): usize {
  return perImage(b);
}
