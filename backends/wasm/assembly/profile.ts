// Optional per-kernel profile: thread 0 adds the wall time since its previous mark to the kernel's slot (f64 ms).
// Time a thread spends waiting at a barrier lands in the kernel that contains the barrier (the BN statistics).
// Off unless the profiling flag is set; then each mark costs one call to the host's clock.
import { J_PROFILE, PROFILE, ctl, scratch } from "./memory-map";

@external("env", "now")
declare function now(): f64;

export const enum Kernel {
  ConvForward, BnStats, BnReluForward, PoolForward, Dropout, HeadForward,
  HeadBackward, BnBackwardSums, BnReluBackward, ConvFilterGrad, ConvInputGrad, PoolBackward, Reduce, COUNT,
}

const LAST: usize = 1016; // this thread's previous mark (f64) in its scratch

/** Starts the clock for thread tid (call at the start of a job). */
export function markStart(tid: i32): void {
  if (tid != 0 || load<i32>(ctl() + J_PROFILE) == 0) return;
  store<f64>(scratch(tid) + LAST, now());
}

/** Charges the time since the previous mark to `kernel`. */
export function mark(tid: i32, kernel: Kernel): void {
  if (tid != 0 || load<i32>(ctl() + J_PROFILE) == 0) return;
  const t = now();
  const slot = ctl() + PROFILE + (<usize>kernel << 3);
  store<f64>(slot, load<f64>(slot) + t - load<f64>(scratch(tid) + LAST));
  store<f64>(scratch(tid) + LAST, t);
}
