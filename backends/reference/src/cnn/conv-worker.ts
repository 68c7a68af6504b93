import { parentPort } from "node:worker_threads";
import type { Arr } from "./arrays.ts";
import { ConvScratch, convBackwardRange, convForwardRange } from "./conv-kernels.ts";
import type { ConvJob, ConvReply } from "./conv-pool.ts";

/** Runs convolution jobs on the part of a batch the main thread hands over (shared-memory activations). */
const port = parentPort;
if (!port) throw new Error("conv-worker.ts must run in a worker thread");

const scratch = {
  float32: new ConvScratch((n) => new Float32Array(n)),
  float64: new ConvScratch((n) => new Float64Array(n)),
};
const scratchFor = (a: Arr): ConvScratch => (a instanceof Float32Array ? scratch.float32 : scratch.float64);

port.on("message", (job: ConvJob) => {
  try {
    if (job.op === "ping") {
      port.postMessage({ id: job.id, ok: true } satisfies ConvReply);
    } else if (job.op === "forward") {
      convForwardRange(job.g, job.x, job.weight, job.bias, job.out, job.i0, job.i1, scratchFor(job.x));
      port.postMessage({ id: job.id, ok: true } satisfies ConvReply);
    } else {
      const gW = new Float64Array(job.g.cout * job.g.cin * 9),
        gB = new Float64Array(job.g.cout);
      convBackwardRange(job.g, job.x, job.dy, job.wflip, job.dx, gW, gB, job.i0, job.i1, scratchFor(job.x));
      port.postMessage({ id: job.id, ok: true, gW, gB } satisfies ConvReply, [gW.buffer, gB.buffer]);
    }
  } catch (e) {
    port.postMessage({
      id: job.id,
      ok: false,
      error: e instanceof Error ? (e.stack ?? e.message) : String(e),
    } satisfies ConvReply);
  }
});
