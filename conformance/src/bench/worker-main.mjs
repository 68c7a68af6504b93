// Bench worker entry: TypeScript run through tsx (as bin/nnspec.js does), so the workspace needs no build step.
import { register } from "tsx/esm/api";
register();
await import("./worker.ts");
