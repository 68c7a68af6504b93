// The loop every worker thread runs (Node worker_threads and browser Web Workers alike): instantiate the kernels
// on the model's shared memory, then for each job generation bumped by the main thread run this thread's share
// (`run(tid)`, which synchronises with the other threads inside wasm) and count itself done.
// Plain JavaScript: worker threads load it directly, with no TypeScript step.

/**
 * @param {{ module: WebAssembly.Module, memory: WebAssembly.Memory, tid: number }} init
 * @param {(message: unknown) => void} post  sends a message to the main thread
 */
export function workerLoop(init, post) {
  const { module, memory, tid } = init;
  const ex = new WebAssembly.Instance(module, { env: { memory, now: () => performance.now() } }).exports;
  // The control words live in the first page, so this view stays valid when the memory grows.
  const words = new Int32Array(memory.buffer);
  const GEN = ex.jobGenAddress() >> 2,
    DONE = ex.jobDoneAddress() >> 2,
    ERROR = ex.jobErrorAddress() >> 2,
    STOP = ex.jobStopAddress() >> 2;
  let seen = Atomics.load(words, GEN);
  post({ ready: true });
  for (;;) {
    Atomics.wait(words, GEN, seen);
    if (Atomics.load(words, STOP) !== 0) return;
    const gen = Atomics.load(words, GEN);
    if (gen === seen) continue;
    seen = gen;
    try {
      ex.run(tid);
    } catch (e) {
      Atomics.store(words, ERROR, 1);
      post({ error: `thread ${tid}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}` });
    }
    Atomics.add(words, DONE, 1);
    Atomics.notify(words, DONE);
  }
}
