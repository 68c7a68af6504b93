import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  BLOCK_OUTPUTS,
  CAPABILITIES,
  CNN_BLOCK_RECORDS,
  CNN_CAPABILITIES,
  CNN_LAYERS,
  NET222_CAPABILITIES,
  SpecValidationError,
  capabilitySchema,
  packageVersion,
  parseOptions,
  recordedBlocks,
  validateLabels,
  type LayerSpec,
} from "@nnspec/spec";

function errorOf(fn: () => unknown): SpecValidationError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SpecValidationError) return e;
    throw e;
  }
  throw new Error("expected a SpecValidationError");
}

describe("recordedBlocks: which layer's output each block name is recorded from", () => {
  const at = (name: string) => CNN_LAYERS.findIndex((l) => "name" in l && l.name === name);

  it("records every block output exactly once, in BLOCK_OUTPUTS order", () => {
    expect(CNN_BLOCK_RECORDS).toHaveLength(CNN_LAYERS.length);
    expect(CNN_BLOCK_RECORDS.filter((r) => r !== null)).toEqual([...BLOCK_OUTPUTS]);
  });
  it("conv blocks on the ReLU after their BatchNorm", () => {
    for (let k = 1; k <= 9; k++) {
      const bn = at(`bn${k}`);
      expect(CNN_BLOCK_RECORDS[bn]).toBeNull();
      expect(CNN_LAYERS[bn + 1]!.type).toBe("relu");
      expect(CNN_BLOCK_RECORDS[bn + 1]).toBe(`block${k}`);
    }
  });
  it("pools on the dropout that follows them; drop3 (after a ReLU) records nothing", () => {
    expect(CNN_BLOCK_RECORDS[at("pool1")]).toBeNull();
    expect(CNN_BLOCK_RECORDS[at("drop1")]).toBe("pool1");
    expect(CNN_BLOCK_RECORDS[at("pool2")]).toBeNull();
    expect(CNN_BLOCK_RECORDS[at("drop2")]).toBe("pool2");
    expect(CNN_BLOCK_RECORDS[at("drop3")]).toBeNull();
  });
  it("gap, logits and logProbs on their layers", () => {
    const type = (t: LayerSpec["type"]) => CNN_LAYERS.findIndex((l) => l.type === t);
    expect(CNN_BLOCK_RECORDS[type("gap")]).toBe("gap");
    expect(CNN_BLOCK_RECORDS[type("linear")]).toBe("logits");
    expect(CNN_BLOCK_RECORDS[type("logsoftmax")]).toBe("logProbs");
  });
  it("a pool with no dropout after it records on itself; a ReLU with no BatchNorm before it records nothing", () => {
    const layers: LayerSpec[] = [
      { type: "conv2d", name: "conv1", inChannels: 1, outChannels: 4, kernel: 3, padding: 1 },
      { type: "relu" },
      { type: "maxpool2d", name: "pool1", size: 2 },
      { type: "gap" },
    ];
    expect(recordedBlocks(layers)).toEqual([null, null, "pool1", "gap"]);
  });
  it("rejects a layer list that would record a name outside BLOCK_OUTPUTS", () => {
    const layers: LayerSpec[] = [
      { type: "batchnorm2d", name: "bn10", channels: 4, eps: 1e-5, momentum: 0.1 },
      { type: "relu" },
    ];
    expect(() => recordedBlocks(layers)).toThrow(/bn10 would record "block10"/);
  });
});

describe("validateLabels", () => {
  it("accepts integer classes in range", () => {
    expect(() => validateLabels([0, 9, 3], 3, 10, "x CNN")).not.toThrow();
    expect(() => validateLabels(Float32Array.of(1, 2), 2, 10, "x CNN")).not.toThrow();
  });
  it("names the source and the first bad label, on one line", () => {
    for (const [bad, shown] of [
      [10, "10"],
      [-1, "-1"],
      [2.5, "2.5"],
      [NaN, "NaN"],
    ] as const) {
      const e = errorOf(() => validateLabels([0, bad], 2, 10, "x CNN"));
      expect(e.message).toBe(`x CNN: labels[1] = ${shown} is not a class in 0..9`);
    }
  });
  it("needs one label per image", () => {
    expect(errorOf(() => validateLabels([1, 2, 3], 2, 10, "x CNN")).message).toBe("x CNN: 3 labels for a batch of 2");
  });
});

describe("capability groups", () => {
  it("CAPABILITIES is the 2-2-2 group then the CNN group, each valid", () => {
    expect(CAPABILITIES).toEqual([...NET222_CAPABILITIES, ...CNN_CAPABILITIES]);
    for (const c of CAPABILITIES) expect(capabilitySchema.parse(c)).toBe(c);
  });
});

describe("packageVersion", () => {
  it("reads a semver version", () => {
    expect(packageVersion({ name: "p", version: "0.1.0" })).toBe("0.1.0");
    expect(packageVersion({ version: "2.0.0-rc.1+build.5" })).toBe("2.0.0-rc.1+build.5");
  });
  it("names the file and the field when the version is missing or not semver", () => {
    expect(errorOf(() => packageVersion({ name: "p" }, "pkg/package.json")).problems).toEqual([
      `field "version": missing (expected string)`,
    ]);
    expect(errorOf(() => packageVersion({ version: "v1" }, "pkg/package.json")).message).toMatch(
      /pkg\/package\.json[\s\S]*"version": not a semver version/,
    );
    expect(() => packageVersion(null)).toThrow(SpecValidationError);
  });
});

describe("parseOptions", () => {
  const schema = z.object({ precision: z.enum(["float64", "float32"]).default("float64") }).strict();
  it("undefined means no options; defaults apply", () => {
    expect(parseOptions(schema, undefined, "b backend")).toEqual({ precision: "float64" });
  });
  it("one line naming the source and each bad option", () => {
    const e = errorOf(() => parseOptions(schema, { precision: "float16", colour: 1 }, "b backend"));
    expect(e.message).not.toContain("\n");
    expect(e.message).toMatch(/^b backend: option "precision": .*'float64' \| 'float32'.*; unknown option "colour"$/);
  });
});
