import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";

// The one conformance suite, unchanged, against tfjs on WebGL in headless Chromium (vitest "browser" project).
await describeConformance("tfjs-webgl in Chromium", () => createBackend());
