import { describe, expect, it } from "vitest";
import { SpecValidationError } from "@nnspec/spec";
import {
  FixtureReadError,
  listCnnFixtures,
  listNet222Fixtures,
  loadCnnFixture,
  loadNet222Fixture,
  resolveAgainst,
} from "@nnspec/fixtures/core";
import { browserFixtureIO } from "../src/browser/fixture-io.ts";
import { collectChecks } from "../src/suite.ts";

// The browser side of the golden-file seam: the same loaders, reading through the vitest server's commands.
const io = await browserFixtureIO();

describe("golden files in the browser", () => {
  it("lists and loads the committed goldens, binary tensors intact", async () => {
    const net222 = await listNet222Fixtures(undefined, io);
    const lrs = (await Promise.all(net222.map((p) => loadNet222Fixture(p, io)))).map((f) => f.lr);
    expect(lrs.length).toBeGreaterThanOrEqual(6);
    expect(lrs).toEqual([...lrs].sort((a, b) => a - b));
    const cnn = await listCnnFixtures(undefined, [], io);
    expect(cnn.length).toBeGreaterThanOrEqual(2);
    for (const p of cnn) {
      const f = await loadCnnFixture(p, io);
      // The loader already checked the byte count; the labels decode to classes only if every byte survived base64.
      expect(Array.from(f.labels).every((y) => y >= 0 && y < 10)).toBe(true);
      expect(f.labels.length).toBe(f.manifest.batch);
      let z = 0;
      for (let j = 0; j < 10; j++) z += Math.exp(f.evalLogProbs[j]!);
      expect(Math.abs(z - 1)).toBeLessThan(1e-12);
    }
  });

  it("a missing file is reported as missing, by path", async () => {
    const nowhere = resolveAgainst(io.fixtureDirs.net222, "nope.json");
    const err = await io.readText(nowhere).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FixtureReadError);
    expect((err as FixtureReadError).missing).toBe(true);
    await expect(loadNet222Fixture(nowhere, io)).rejects.toThrow(/nope\.json[\s\S]*file not found/);
    await expect(loadNet222Fixture(nowhere, io)).rejects.toBeInstanceOf(SpecValidationError);
  });

  it("the server hands out nothing outside the workspace", async () => {
    const err = await io.readText("/etc/hostname").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FixtureReadError);
    expect((err as FixtureReadError).missing).toBe(false);
    expect((err as Error).message).toMatch(/outside .*not served to the browser/);
  });

  it("collectChecks here: 2-2-2 and CNN checks from the committed goldens, no workbook checks", async () => {
    const ids = (await collectChecks()).map((c) => c.id);
    expect(ids.some((id) => id.startsWith("net222."))).toBe(true);
    expect(ids.some((id) => id.startsWith("cnn."))).toBe(true);
    expect(ids.some((id) => id.startsWith("workbook."))).toBe(false);
  });
});
