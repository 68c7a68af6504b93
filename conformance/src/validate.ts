import type { ZodTypeAny } from "zod";
import {
  PROTOCOL_METHODS,
  parseWith,
  type Backend,
  type CnnModel,
  type MethodResult,
  type ProtocolMethod,
} from "@nnspec/spec";

// Browser-safe. The same result schemas as the pipe protocol (spec/src/protocol.ts), applied to a backend in this
// process: a number sent as a string, a missing field or a plain object where a tensor belongs is an error the
// check reports, in-process exactly as over the pipe — never coerced by `a − e` arithmetic into a pass.

const VALIDATED = Symbol("nnspec.validated");

function checker(b: Backend) {
  return <M extends ProtocolMethod>(method: M, value: unknown): MethodResult<M> =>
    parseWith(
      PROTOCOL_METHODS[method].result as ZodTypeAny,
      value,
      `${b.manifest.name}: result of ${method}`,
    ) as MethodResult<M>;
}

function validatedModel(m: CnnModel, check: ReturnType<typeof checker>): CnnModel {
  const out: CnnModel = {
    summary: async () => check("model.summary", await m.summary()),
    forward: async (x, n, o) => check("model.forward", await m.forward(x, n, o)),
    backward: async (labels) => check("model.backward", await m.backward(labels)),
    gradients: async () => check("model.gradients", await m.gradients()),
    step: (sgd) => m.step(sgd),
    parameters: async () => check("model.parameters", await m.parameters()),
    buffers: async () => check("model.buffers", await m.buffers()),
    dispose: () => m.dispose(),
  };
  // Optional members stay absent when the model has none (the optimizer-state check says so itself).
  if (m.optimizerState) out.optimizerState = async () => check("model.optimizerState", await m.optimizerState!());
  if (m.setOptimizerState) out.setOptimizerState = (state) => m.setOptimizerState!(state);
  return out;
}

/** A view of `b` whose every result is validated against the protocol's result schemas (idempotent). */
export function validatedBackend(b: Backend): Backend {
  if ((b as { [VALIDATED]?: true })[VALIDATED]) return b;
  const check = checker(b);
  const n = b.net222;
  const c = b.cnn;
  const out: Backend & { [VALIDATED]: true } = {
    [VALIDATED]: true,
    manifest: b.manifest,
    ...(n
      ? {
          net222: {
            forward: async (config) => check("net222.forward", await n.forward(config)),
            gradients: async (config) => check("net222.gradients", await n.gradients(config)),
            step: async (config, lr) => check("net222.step", await n.step(config, lr)),
            train: async (config, lr, steps) => check("net222.train", await n.train(config, lr, steps)),
          },
        }
      : {}),
    ...(c ? { cnn: { create: async (init) => validatedModel(await c.create(init), check) } } : {}),
    ...(b.dispose ? { dispose: () => b.dispose!() } : {}),
  };
  return out;
}
