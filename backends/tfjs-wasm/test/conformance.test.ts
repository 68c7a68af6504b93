import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";

// The one conformance suite, unchanged, against the tfjs wasm backend (float32 tolerance).
await describeConformance("tfjs-wasm", () => createBackend());
