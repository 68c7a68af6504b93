import { describe, expect, it } from "vitest";
import { forward, gradients, updateWeights, type Backend, type Net222Ops } from "@nnspec/spec";
import { collectChecks, runChecks, runSuite, type BackendSupervisor } from "@nnspec/conformance";

/** The runner's side of isolation, without processes: timeouts, a lost instance, restarts, interruption. */
const checks = (await collectChecks({ onlyFixtures: ["fixtures/net222/lr-0.5.json"] as const })).slice(0, 3); // forward, gradients, step

function backend(name: string, net222: Partial<Net222Ops> = {}): Backend {
  return {
    manifest: {
      name,
      version: "0",
      precision: "float64",
      environment: "node",
      device: "test",
      capabilities: ["net222.forward", "net222.gradients", "net222.step"],
    },
    net222: {
      forward: async (c) => forward(c),
      gradients: async (c) => gradients(c),
      step: async (c, lr) => updateWeights(c, gradients(c), lr),
      train: async () => [],
      ...net222,
    },
  };
}

/** Instances made by `make(k)` (k = 0, 1, …); `lose(reason)` ends the current one as a dead process would. */
function supervisor(make: (k: number) => Backend, failRestart = false) {
  let k = 0;
  let current = make(0);
  let lostReason: string | undefined;
  let resolveLost!: (r: string) => void;
  let lost = new Promise<string>((r) => {
    resolveLost = r;
  });
  const s: BackendSupervisor & { restarts: number; lose(reason: string): void } = {
    restarts: 0,
    current: () => current,
    lostReason: () => lostReason,
    lost: () => lost,
    async restart() {
      s.restarts++;
      if (failRestart) throw new Error("no fresh instance");
      current = make(++k);
      lostReason = undefined;
      lost = new Promise<string>((r) => {
        resolveLost = r;
      });
    },
    lose(reason) {
      lostReason = reason;
      resolveLost(reason);
    },
  };
  return s;
}

describe("runSuite", () => {
  it("`throw undefined` is an error result naming what was thrown (no crash reading .stack)", async () => {
    const r = await runChecks(
      backend("u", {
        gradients: async () => {
          throw undefined;
        },
      }),
      checks,
    );
    expect(r.map((x) => x.status)).toEqual(["pass", "error", "pass"]);
    expect(r[1]!.detail).toBe("threw: undefined was thrown (no error object)");
  });

  it("a check past its timeout is a 'timeout'; the supervisor gives a fresh instance and the run goes on", async () => {
    const s = supervisor((k) => backend(`b${k}`, k === 0 ? { gradients: () => new Promise(() => undefined) } : {}));
    const out = await runSuite(s, checks, { timeoutMs: () => 200 });
    expect(out.incomplete).toBeUndefined();
    expect(out.results.map((x) => x.status)).toEqual(["pass", "timeout", "pass"]);
    expect(out.results[1]!.detail).toBe("no result within 0.2 s (check timeout); the backend was restarted");
    expect(s.restarts).toBe(1);
  });

  it("an instance lost mid-check (its process died) is that check's error, named, and is replaced", async () => {
    let s!: ReturnType<typeof supervisor>;
    s = supervisor((k) =>
      backend(
        `b${k}`,
        k === 0
          ? {
              gradients: () => {
                s.lose("backend exited with code 0");
                return new Promise(() => undefined);
              },
            }
          : {},
      ),
    );
    const out = await runSuite(s, checks);
    expect(out.results.map((x) => x.status)).toEqual(["pass", "error", "pass"]);
    expect(out.results[1]!.detail).toBe("the backend process stopped: backend exited with code 0");
    expect(s.restarts).toBe(1);
  });

  it("no fresh instance: the run is incomplete, with the results so far and why", async () => {
    const s = supervisor(() => backend("b", { gradients: () => new Promise(() => undefined) }), true);
    const out = await runSuite(s, checks, { timeoutMs: () => 100 });
    expect(out.results.map((x) => x.status)).toEqual(["pass", "timeout"]);
    expect(out.incomplete).toBe(
      "the backend could not be restarted after net222.lr-0.5.gradients.step0 (timeout): no fresh instance",
    );
  });

  it("an abort stops at once: the check in flight gets no result", async () => {
    const stop = new AbortController();
    const out = await runSuite(
      backend("b", {
        gradients: () => {
          setTimeout(() => stop.abort("interrupted by SIGINT"), 10);
          return new Promise(() => undefined);
        },
      }),
      checks,
      { signal: stop.signal },
    );
    expect(out).toEqual({
      results: [expect.objectContaining({ status: "pass" })],
      incomplete: "interrupted by SIGINT",
    });
  });

  it("results are validated in-process too: numbers as strings are an error, not coerced into a pass", async () => {
    const strings = backend("s", {
      forward: async (c) => Object.fromEntries(Object.entries(forward(c)).map(([k, v]) => [k, String(v)])) as never,
    });
    const r = await runChecks(strings, checks);
    expect(r[0]!.status).toBe("error");
    expect(r[0]!.detail).toMatch(
      /^threw: SpecValidationError: s: result of net222\.forward: invalid input\n {2}- field "h1": expected a number, got the string "0\.02750/,
    );
  });
});
