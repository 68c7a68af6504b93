import type { z } from "zod";
import {
  FrameDecoder,
  PROTOCOL_METHODS,
  PROTOCOL_VERSION,
  encodeFrame,
  judgeMessageSchema,
  parseWith,
  type Backend,
  type CnnModel,
  type JudgeMessage,
  type ProtocolMethod,
} from "@nnspec/spec";
import { errorMessage } from "../errors.ts";

/** Where the server reads calls and writes replies (the child's stdin and its real stdout). */
export interface ServeIO {
  readonly input: NodeJS.ReadableStream;
  write(chunk: Uint8Array): void;
}

/** The backend behind the server, created on hello with the judge's options. */
export type BackendFactory = (options: Record<string, unknown>) => Promise<Backend>;

class NotImplementedError extends Error {
  override name = "NotImplementedError";
}

/** An error as the protocol carries it: any thrown value (undefined, a string, an object) becomes name + message. */
function wireError(err: unknown): { name: string; message: string; stack?: string } {
  if (err instanceof Error)
    return { name: err.name || "Error", message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
  return { name: err === undefined || err === null ? String(err) : typeof err, message: errorMessage(err) };
}

/** One call against the backend. Models live in `models` under the handles this hands out. */
interface ServerState {
  readonly backend: Backend;
  readonly models: Map<number, CnnModel>;
  handles: number;
  disposed: boolean;
}

type ParsedArgs<M extends ProtocolMethod> = z.output<(typeof PROTOCOL_METHODS)[M]["args"]>;

function argsOf<M extends ProtocolMethod>(method: M, raw: unknown): ParsedArgs<M> {
  return parseWith(PROTOCOL_METHODS[method].args as z.ZodTypeAny, raw, `arguments of ${method}`) as ParsedArgs<M>;
}

async function dispatch(state: ServerState, method: ProtocolMethod, raw: unknown): Promise<unknown> {
  const { backend, models } = state;
  const net222 = () => {
    if (!backend.net222) throw new NotImplementedError(`backend ${backend.manifest.name} has no net222 ops`);
    return backend.net222;
  };
  const model = (handle: number): CnnModel => {
    const m = models.get(handle);
    if (!m) throw new Error(`no model with handle ${handle} (disposed, or never created)`);
    return m;
  };
  const optional = <K extends "optimizerState" | "setOptimizerState">(
    handle: number,
    k: K,
  ): NonNullable<CnnModel[K]> => {
    const m = model(handle);
    const f = m[k];
    if (!f) throw new NotImplementedError(`the model has no ${k}()`);
    return f.bind(m) as NonNullable<CnnModel[K]>;
  };
  switch (method) {
    case "net222.forward":
      return net222().forward(argsOf(method, raw).config);
    case "net222.gradients":
      return net222().gradients(argsOf(method, raw).config);
    case "net222.step": {
      const a = argsOf(method, raw);
      return net222().step(a.config, a.lr);
    }
    case "net222.train": {
      const a = argsOf(method, raw);
      return net222().train(a.config, a.lr, a.steps);
    }
    case "cnn.create": {
      const a = argsOf(method, raw);
      if (!backend.cnn) throw new NotImplementedError(`backend ${backend.manifest.name} has no cnn ops`);
      const m = await backend.cnn.create(
        a.buffers ? { parameters: a.parameters, buffers: a.buffers } : { parameters: a.parameters },
      );
      const handle = ++state.handles;
      models.set(handle, m);
      return { model: handle };
    }
    case "model.summary":
      return model(argsOf(method, raw).model).summary();
    case "model.forward": {
      const a = argsOf(method, raw);
      return model(a.model).forward(a.x, a.n, a.options);
    }
    case "model.backward": {
      const a = argsOf(method, raw);
      return model(a.model).backward(a.labels);
    }
    case "model.gradients":
      return model(argsOf(method, raw).model).gradients();
    case "model.step": {
      const a = argsOf(method, raw);
      return model(a.model).step(a.sgd);
    }
    case "model.parameters":
      return model(argsOf(method, raw).model).parameters();
    case "model.buffers":
      return model(argsOf(method, raw).model).buffers();
    case "model.optimizerState":
      return optional(argsOf(method, raw).model, "optimizerState")();
    case "model.setOptimizerState": {
      const a = argsOf(method, raw);
      return optional(a.model, "setOptimizerState")(a.state);
    }
    case "model.dispose": {
      const handle = argsOf(method, raw).model;
      const m = model(handle);
      models.delete(handle);
      return m.dispose();
    }
    case "backend.dispose": {
      argsOf(method, raw);
      state.disposed = true;
      const all = [...models.values()];
      models.clear();
      for (const m of all) await m.dispose();
      return backend.dispose?.();
    }
  }
}

/**
 * Serve a backend over the pipe protocol: hello → create it → ready; then every call, concurrently, each answered
 * by its id. Resolves when the input ends (the judge closed it) after disposing the backend.
 */
export function serveBackend(io: ServeIO, create: BackendFactory): Promise<void> {
  const decoder = new FrameDecoder();
  let state: ServerState | undefined;
  let starting: Promise<void> | undefined;
  const send = (m: Record<string, unknown>) => {
    for (const chunk of encodeFrame(m)) io.write(chunk);
  };
  const sendError = (id: number, err: unknown) => send({ type: "error", id, error: wireError(err) });

  const handle = (m: JudgeMessage) => {
    if (m.type === "hello") {
      if (starting) return sendError(0, new Error("a second hello"));
      starting = create(m.options).then(
        (b) => {
          state = { backend: b, models: new Map(), handles: 0, disposed: false };
          send({ type: "ready", protocol: PROTOCOL_VERSION, manifest: b.manifest });
        },
        (err) => sendError(0, err),
      );
      return;
    }
    const id = m.id;
    void (async () => {
      await starting;
      if (!state) throw new Error("call before a successful hello");
      return dispatch(state, m.method, m.args);
    })().then(
      (value) => {
        try {
          send({ type: "result", id, value: value ?? null });
        } catch (err) {
          // A value JSON cannot carry (a cycle, a BigInt): that call's error, not the server's.
          sendError(id, new Error(`the result of ${m.method} cannot be sent: ${errorMessage(err)}`));
        }
      },
      (err) => sendError(id, err),
    );
  };

  return new Promise((resolve, reject) => {
    io.input.on("data", (chunk: Buffer) => {
      try {
        for (const raw of decoder.push(chunk)) handle(parseWith(judgeMessageSchema, raw, "message from the judge"));
      } catch (err) {
        reject(err);
      }
    });
    io.input.on("error", reject);
    io.input.on("end", () => {
      void (async () => {
        await starting?.catch(() => undefined);
        if (!state || state.disposed) return;
        for (const m of state.models.values()) await m.dispose().catch(() => undefined);
        await state.backend.dispose?.();
      })().then(resolve, reject);
    });
  });
}
