import { existsSync, writeFileSync } from "node:fs";
import {
  forward,
  gradients,
  updateWeights,
  weightsOf,
  type Backend,
  type Net222Config,
  type StepRecord,
} from "@nnspec/spec";

/**
 * A correct 2-2-2 backend (the spec's formulas) with one fault injected into `gradients()` — the second check of a
 * trajectory file — chosen by $NNSPEC_FAULT. The first check passes before the fault, the others after it, so a
 * test sees both that the fault is reported and that nothing before or after it is lost.
 */
const FAULT = process.env.NNSPEC_FAULT ?? "none";
/** For "restart-fails": the file whose existence makes createBackend refuse (the instance after the crash). */
const MARKER = process.env.NNSPEC_FAULT_MARKER ?? "";

async function faultyGradients(c: Net222Config): Promise<ReturnType<typeof gradients>> {
  const g = gradients(c);
  switch (FAULT) {
    case "throw":
      throw new Error("injected fault: gradients() threw");
    case "throw-undefined":
      throw undefined;
    case "hang-interval":
      setInterval(() => undefined, 1000); // keeps the event loop alive
      return new Promise(() => undefined);
    case "never":
      return new Promise(() => undefined);
    case "exit0":
      return process.exit(0);
    case "abort":
      return process.abort();
    case "oom": {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array(1e6).fill(Math.random()));
    }
    case "restart-fails":
      writeFileSync(MARKER, "crashed once\n");
      return process.exit(1);
    case "stdout":
      // A library's chatter on stdout must not reach the protocol channel of the judge's server.
      console.log("debug: computing gradients");
      process.stdout.write("raw bytes on stdout\n");
      return g;
    case "nan":
      return { ...g, w3: NaN };
    case "strings":
      return Object.fromEntries(Object.entries(g).map(([k, v]) => [k, String(v)])) as unknown as typeof g;
    case "missing": {
      const { w8: _dropped, ...seven } = g;
      return seven as typeof g;
    }
    default:
      return g;
  }
}

export async function createBackend(): Promise<Backend> {
  if (FAULT === "restart-fails" && existsSync(MARKER))
    throw new Error("injected fault: this backend cannot start again");
  const train = (config: Net222Config, lr: number, steps: number): StepRecord[] => {
    const records: StepRecord[] = [];
    let c = config;
    for (let step = 0; step <= steps; step++) {
      const f = forward(c),
        g = gradients(c, f);
      records.push({ step, weights: weightsOf(c), forward: f, gradients: g });
      c = { ...c, ...updateWeights(c, g, lr) };
    }
    return records;
  };
  return {
    manifest: {
      name: `faulty-${FAULT}`,
      version: "0.0.0",
      precision: "float64",
      environment: "node",
      device: "test double",
      capabilities: ["net222.forward", "net222.gradients", "net222.step", "net222.train"],
    },
    net222: {
      forward: async (c) => forward(c),
      gradients: faultyGradients,
      step: async (c, lr) => updateWeights(c, gradients(c), lr),
      train: async (c, lr, steps) => train(c, lr, steps),
    },
  };
}
