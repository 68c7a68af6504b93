import { createHash } from "node:crypto";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { BackendWasm, setThreadsCount } from "@tensorflow/tfjs-backend-wasm";

/**
 * tfjs 4.22 never uses its threaded-SIMD wasm build in Node (flag WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to
 * false there, tfjs issue #3830): its loader hands emscripten `blob:` URLs for the pthread worker script, which
 * Node's worker_threads cannot load. This starts that same build with what Node can load — the worker script
 * written to a file, the factory's own file as the worker's main script — and registers it as tfjs's "wasm"
 * backend, so every registered wasm kernel runs unchanged, XNNPACK getting a pool of `threads` threads.
 *
 * One more obstacle: the C side caps the pool at emscripten_num_logical_cores() / 2 (it assumes two hyper-threads
 * per core), which Node answers with os.cpus().length — one thread on a 2-vCPU machine. While the module's
 * static constructors run we answer with 2 × the requested count, then restore os.cpus.
 */

/** The parts of the emscripten module tfjs's BackendWasm uses (it adds `tfjs` wrappers itself in init()). */
interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => unknown;
  PThread: { runningWorkers: Array<{ unref(): void }> };
  tfjs?: Record<string, unknown>;
}

type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

export interface ThreadedWasm {
  readonly threads: number;
  readonly binary: string;
}

const PTHREAD_POOL = 8; // tfjs's build pre-creates 8 pthread workers; XNNPACK can use at most that many.

/** The pthread worker script, as a CommonJS file Node can start; content-addressed so processes can share it. */
function workerScript(source: string): string {
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const file = join(os.tmpdir(), `nnspec-tfjs-wasm-pthread-${hash}.cjs`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, source);
    renameSync(tmp, file);
  }
  return file;
}

export async function startThreadedWasm(wasmDir: string, threads: number): Promise<ThreadedWasm> {
  if (threads < 2 || threads > PTHREAD_POOL)
    throw new Error(`tfjs-wasm: a threaded start needs 2..${PTHREAD_POOL} threads, got ${threads}`);
  const require = createRequire(import.meta.url);
  const wasmOut = join(dirname(require.resolve("@tensorflow/tfjs-backend-wasm")), "..", "wasm-out");
  const factoryFile = join(wasmOut, "tfjs-backend-wasm-threaded-simd.js");
  const factory = require(factoryFile) as Factory;
  // The package ships the worker script as a JS string whose "\n" escapes were unescaped into real newlines
  // (tfjs re-escapes them before making its blob); do the same before writing it out.
  const { wasmWorkerContents } = require(join(wasmOut, "tfjs-backend-wasm-threaded-simd.worker.js")) as {
    wasmWorkerContents: string;
  };
  const worker = workerScript(wasmWorkerContents.replace(/\n/g, "\\n"));
  const binary = join(wasmDir, "tfjs-backend-wasm-threaded-simd.wasm");

  const cpus = os.cpus;
  const osMutable = require("node:os") as { cpus: typeof os.cpus };
  let module: EmscriptenModule;
  osMutable.cpus = () => Array.from({ length: 2 * threads }, () => cpus()[0]!);
  try {
    module = await new Promise<EmscriptenModule>((resolve, reject) => {
      factory({
        locateFile: (path: string, prefix: string) =>
          path.endsWith(".worker.js") ? worker : path.endsWith(".wasm") ? binary : prefix + path,
        mainScriptUrlOrBlob: factoryFile,
        onAbort: (what: unknown) =>
          reject(new Error(`tfjs-wasm: the threaded wasm module aborted while loading ${binary}: ${String(what)}`)),
      }).then(resolve, reject);
    });
  } finally {
    osMutable.cpus = cpus;
  }
  module.tfjs = {
    init: module.cwrap("init", null, []),
    initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
    getThreadsCount: module.cwrap("get_threads_count", "number", []),
    registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
    disposeData: module.cwrap("dispose_data", null, ["number"]),
    dispose: module.cwrap("dispose", null, []),
  };
  setThreadsCount(threads);
  tf.removeBackend("wasm");
  // BackendWasm's constructor creates the XNNPACK pool with the count set above.
  tf.registerBackend("wasm", () => new BackendWasm(module as never), 2);
  const ok = await tf.setBackend("wasm");
  if (!ok || tf.getBackend() !== "wasm")
    throw new Error(`tfjs wasm backend failed to initialise from ${binary} (threaded)`);
  // The pool's threads wait for work forever; unreferenced, they do not keep a finished Node process alive.
  for (const w of module.PThread.runningWorkers) w.unref();
  const actual = (module.tfjs.getThreadsCount as () => number)();
  return { threads: actual, binary };
}
