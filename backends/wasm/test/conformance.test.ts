import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";

// The one conformance suite, unchanged, against the wasm backend in Node: every core, and one thread.
await describeConformance("wasm", () => createBackend());
await describeConformance("wasm", () => createBackend({ threads: 1 }));
