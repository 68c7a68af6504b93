import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";

// The one conformance suite, unchanged, against both configurations of the reference backend.
await describeConformance("reference", () => createBackend({ precision: "float64" }));
await describeConformance("reference", () => createBackend({ precision: "float32" }));
