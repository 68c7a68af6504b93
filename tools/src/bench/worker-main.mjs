// Bench worker entry. Published (dist): the compiled worker.js sits beside this file. Workspace: run the
// TypeScript source through tsx, as bin/nnspec.js does, so the workspace needs no build step.
import { existsSync } from "node:fs";

const compiled = new URL("./worker.js", import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("./worker.ts");
}
