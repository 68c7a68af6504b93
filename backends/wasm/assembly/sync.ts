// A barrier for the threads of one job. Every thread of a job runs the same schedule (net.ts) on its own slice of
// the batch; they meet here where a batch-wide sum is needed (BatchNorm statistics, the gradient reduction).
import { BAR_COUNT, BAR_GEN, J_THREADS, ctl } from "./memory-map";

/** Spins this many rounds before sleeping: a barrier is usually reached by the others within microseconds. */
const SPIN: i32 = 20000;

/**
 * Waits until all `threads` threads have arrived. The last one to arrive resets the count and bumps the
 * generation; the others wait for the generation to change (spin first, then memory.atomic.wait32).
 */
export function barrier(): void {
  const threads = load<i32>(ctl() + J_THREADS);
  if (threads <= 1) return;
  const count = ctl() + BAR_COUNT, gen = ctl() + BAR_GEN;
  const g = atomic.load<i32>(gen);
  if (atomic.add<i32>(count, 1) == threads - 1) {
    atomic.store<i32>(count, 0);
    atomic.add<i32>(gen, 1);
    atomic.notify(gen, threads);
    return;
  }
  for (let i = 0; i < SPIN; i++) {
    if (atomic.load<i32>(gen) != g) return;
  }
  while (atomic.load<i32>(gen) == g) atomic.wait<i32>(gen, g, -1);
}

/** First image of thread `tid`'s slice of a batch of n (the slice is [sliceStart(tid), sliceStart(tid + 1))). */
@inline export function sliceStart(n: i32, tid: i32, threads: i32): i32 {
  return <i32>((<i64>n * tid) / threads);
}
