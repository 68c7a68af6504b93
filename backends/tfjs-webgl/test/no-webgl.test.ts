import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { createBackend, WebglUnavailableError } from "../src/index.ts";

// Node has no WebGL: createBackend must refuse clearly instead of quietly computing on tfjs's cpu backend.
describe("tfjs-webgl without WebGL (Node)", () => {
  it("throws a WebglUnavailableError saying it never falls back to cpu", async () => {
    const err = await createBackend().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebglUnavailableError);
    expect((err as Error).message).toMatch(/no webgl backend here.*never falls back to cpu \(no canvas here/);
    expect(Object.keys(tf.engine().registry)).not.toContain("cpu"); // the cpu backend was never started
  });
});
