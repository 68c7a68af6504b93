// ONNX Runtime peer entry (as worker-main.mjs): the compiled onnx-peer.js when published, else the TypeScript
// source through tsx.
import { existsSync } from "node:fs";

const compiled = new URL("./onnx-peer.js", import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("./onnx-peer.ts");
}
