import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { SpecValidationError } from "@nnspec/spec";
import { registerSweep } from "../src/cli/commands/sweep.ts";
import { UsageError } from "@nnspec/conformance";
import { runMain } from "@nnspec/conformance/cli";
import { parseSweepCli } from "../src/sweep/cli-options.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-sweep-cli-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

function program(): Command {
  const p = new Command("nnspec").exitOverride();
  registerSweep(p);
  return p;
}
const sweep = (...args: string[]) => program().parseAsync(["sweep", ...args], { from: "user" });

async function usageError(args: string[]): Promise<string> {
  vi.spyOn(console, "log").mockImplementation(() => {});
  const err = await sweep(...args, "--out", join(dir, "never")).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UsageError);
  return (err as Error).message;
}

describe("nnspec sweep: bad command-line values name the option and the value", () => {
  it.each([
    ["abc", /option --lr "abc": is not a number/],
    ["0", /option --lr "0": learning rate out of range \(must be > 0 and ≤ 100\)/],
    ["-1", /option --lr "-1": learning rate out of range/],
    ["1e9", /option --lr "1e9": learning rate out of range/],
    ["0.1,,0.5", /option --lr "": is not a number/],
    ["0.5,x", /option --lr "x": is not a number/],
    ["0.5,0.5", /option --lr "0\.5,0\.5": lists a learning rate twice/],
    ["Infinity", /option --lr "Infinity": is not a number/],
  ])("--lr %s", async (value, message) => {
    expect(await usageError(["--lr", value])).toMatch(message);
  });

  it.each([["1.5"], ["-3"], ["ten"]])("--steps %s", async (value) => {
    expect(await usageError(["--steps", value])).toMatch(
      new RegExp(`option --steps "${value}": is not a whole number \\(expected a whole number from 0 to 1000000\\)`),
    );
  });

  it("--steps above the spec's maximum", async () => {
    expect(await usageError(["--steps", "2000000"])).toMatch(/option --steps "2000000": .*1000000/);
  });

  it("an unknown backend is a usage error naming it", async () => {
    expect(await usageError(["--backend", "no-such-backend", "--lr", "0.5", "--steps", "1"])).toMatch(
      /no-such-backend/,
    );
  });

  it("valid values parse to numbers (default backend: reference)", () => {
    expect(parseSweepCli({ lr: " 0.1, 2 ,1e-2", steps: "7" })).toEqual({
      lr: [0.1, 2, 0.01],
      steps: 7,
      backend: "reference",
    });
  });
});

describe("nnspec sweep --config", () => {
  const write = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  it("invalid JSON is an error naming the file", async () => {
    const path = await write("broken.json", '{ "i1": 0.05, ');
    const message = await usageError(["--config", path]);
    expect(message).toContain(path);
    expect(message).toMatch(/invalid JSON/);
  });

  it("a missing file is an error naming the file", async () => {
    expect(await usageError(["--config", join(dir, "absent.json")])).toMatch(
      /absent\.json: cannot read config file \(ENOENT\)/,
    );
  });

  it("wrong, missing and unknown fields are each named, with the file", async () => {
    const path = await write(
      "bad-fields.json",
      JSON.stringify({
        i1: 0.05,
        i2: "0.1",
        t1: 0.5,
        t2: 0.5,
        w1: 0.15,
        w2: 0.2,
        w3: 0.25,
        w4: 0.3,
        w5: 0.4,
        w6: 0.45,
        w7: 0.5,
        lr: 3,
      }),
    );
    vi.spyOn(console, "log").mockImplementation(() => {});
    const err = await sweep("--config", path, "--out", join(dir, "never")).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SpecValidationError);
    const message = (err as Error).message;
    expect(message).toContain(path);
    expect(message).toMatch(/field "i2": expected number, got string/);
    expect(message).toMatch(/field "w8": missing/);
    expect(message).toMatch(/Unrecognized key\(s\) in object: 'lr'/);
    await expect(readdir(join(dir, "never"))).rejects.toThrow(/ENOENT/);
  });
});

describe("nnspec sweep run", () => {
  it("prints the table and the output folder; a config file's values are used", async () => {
    const path = join(dir, "good.json");
    await writeFile(
      path,
      JSON.stringify({
        i1: 0.05,
        i2: 0.1,
        t1: 0.01,
        t2: 0.99,
        w1: 0.15,
        w2: 0.2,
        w3: 0.25,
        w4: 0.3,
        w5: 0.4,
        w6: 0.45,
        w7: 0.5,
        w8: 0.55,
        b1: 0.35,
        b2: 0.6,
      }),
    );
    const out = join(dir, "run");
    const logs: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void logs.push(a.join(" ")));
    vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    await sweep("--config", path, "--lr", "0.5,1", "--steps", "20", "--out", out);
    const text = logs.join("\n");
    expect(text).toContain(`config: ${path}, 20 steps`);
    expect(text).toMatch(/^0\.5 +\S+ +\S+ +never +no$/m);
    expect(text).toMatch(/^1 +\S+ +\S+ +never +no$/m);
    expect(text).toContain(`wrote 7 files to ${out}`);
    expect((await readdir(out)).sort()).toEqual([
      "error-all-lr.png",
      "error-all-lr.svg",
      "error-lr-0.5.png",
      "error-lr-0.5.svg",
      "error-lr-1.png",
      "error-lr-1.svg",
      "sweep.json",
    ]);
  });

  it("through runMain a bad value prints one red error line naming the option and exits with code 2", async () => {
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void errors.push(a.join(" ")));
    const argv = process.argv;
    process.argv = ["node", "nnspec", "sweep", "--lr", "abc"];
    try {
      await runMain(program());
      expect(process.exitCode).toBe(2);
    } finally {
      process.argv = argv;
      process.exitCode = undefined;
    }
    expect(errors.join("\n")).toMatch(/error: option --lr "abc": is not a number/);
  });
});
