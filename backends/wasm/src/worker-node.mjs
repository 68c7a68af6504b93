// Node worker_threads entry: the first message carries the module, the shared memory and this thread's id.
import { parentPort } from "node:worker_threads";
import { workerLoop } from "./worker-loop.mjs";

parentPort.once("message", (init) => workerLoop(init, (m) => parentPort.postMessage(m)));
