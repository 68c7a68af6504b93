// The module's exports: what the JavaScript side (src/) calls. Buffers are located by the functions below, so the
// layout is defined once, in memory-map.ts.
import {
  BN_RMEAN, BN_RVAR, Buf, J_DROP_HASH, J_DROP_SCALE, J_DROP_THRESH, J_DROPOUT, J_LOSS, J_N, J_OP, J_THREADS, JOB_DONE,
  JOB_ERROR, JOB_GEN, JOB_STOP, J_PROFILE, PARAM_COUNT, PROFILE, batchAreaStart, bnState, buf, ctl,
} from "./memory-map";
import { packAllWeights } from "./net";
import { sgdStep } from "./sgd";
import { Kernel } from "./profile";

export { plan } from "./memory-map";
export { run, packAllWeights } from "./net";
export { net222Train } from "./net222";

export function paramCount(): i32 {
  return PARAM_COUNT;
}
/** Where the per-batch area starts (a re-plan zeroes it from here to the end). */
export function batchArea(): usize {
  return batchAreaStart();
}

/** Byte addresses of the words the JavaScript job protocol waits on (Int32Array index = address / 4). */
export function jobGenAddress(): usize {
  return ctl() + JOB_GEN;
}
export function jobDoneAddress(): usize {
  return ctl() + JOB_DONE;
}
export function jobErrorAddress(): usize {
  return ctl() + JOB_ERROR;
}
export function jobStopAddress(): usize {
  return ctl() + JOB_STOP;
}

/** The next job: its kind (1 forward-train, 2 forward-eval, 3 backward), batch size and number of threads running it. */
export function setJob(op: i32, n: i32, threads: i32): void {
  store<i32>(ctl() + J_OP, op);
  store<i32>(ctl() + J_N, n);
  store<i32>(ctl() + J_THREADS, threads);
}
/** Dropout for the next train forward: on/off, and per layer the rule's hash prefix, threshold and scale. */
export function setDropout(on: bool): void {
  store<i32>(ctl() + J_DROPOUT, on ? 1 : 0);
}
export function setDropoutLayer(layer: i32, prefix: u32, threshold: u32, scale: f32): void {
  const at = <usize>layer << 2;
  store<u32>(ctl() + J_DROP_HASH + at, prefix);
  store<u32>(ctl() + J_DROP_THRESH + at, threshold);
  store<f32>(ctl() + J_DROP_SCALE + at, scale);
}
/** Per-kernel profiling of thread 0 (see profile.ts): on/off; milliseconds of kernel `k` so far. */
export function setProfiling(on: bool): void {
  store<i32>(ctl() + J_PROFILE, on ? 1 : 0);
  if (on) memory.fill(ctl() + PROFILE, 0, <usize>Kernel.COUNT * 8);
}
export function profileMs(k: i32): f64 {
  return load<f64>(ctl() + PROFILE + (<usize>k << 3));
}
export function lastLoss(): f64 {
  return load<f64>(ctl() + J_LOSS);
}

/** Buffer addresses (bytes). Blocks are padded NHWC, pools padded NHWC, head rows 16 floats apart. */
export function inputAddress(): usize {
  return buf(Buf.INPUT);
}
export function labelsAddress(): usize {
  return buf(Buf.LABELS);
}
export function paramsAddress(): usize {
  return buf(Buf.PARAMS);
}
export function gradsAddress(): usize {
  return buf(Buf.GRADS);
}
export function momentumAddress(): usize {
  return buf(Buf.MOMENTUM);
}
export function blockAddress(k: i32): usize {
  return buf(<Buf>(Buf.A1 + k - 1));
}
export function poolAddress(j: i32): usize {
  return buf(j == 1 ? Buf.P1 : Buf.P2);
}
export function gapAddress(): usize {
  return buf(Buf.GAP);
}
export function logitsAddress(): usize {
  return buf(Buf.LOGITS);
}
export function logProbsAddress(): usize {
  return buf(Buf.LOGP);
}
export function runningMeanAddress(k: i32): usize {
  return bnState(k) + BN_RMEAN;
}
export function runningVarAddress(k: i32): usize {
  return bnState(k) + BN_RVAR;
}

/** One SGD step over all parameters (see sgd.ts), then the kernels' weight packings are refreshed. */
export function sgd(lr: f32, momentum: f32, weightDecay: f32, first: bool): void {
  sgdStep(buf(Buf.PARAMS), buf(Buf.GRADS), buf(Buf.MOMENTUM), PARAM_COUNT, lr, momentum, weightDecay, first);
  packAllWeights();
}
