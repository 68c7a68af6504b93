import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";

// The same conformance suite as conformance.test.ts, run inside headless Chromium (vitest "browser" project).
await describeConformance("reference in Chromium", () => createBackend({ precision: "float64" }));
