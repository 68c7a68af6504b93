import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { z } from "zod";
import {
  FrameDecoder,
  PROTOCOL_METHODS,
  PROTOCOL_VERSION,
  backendMessageSchema,
  claims,
  encodeFrame,
  manifestSchema,
  parseWith,
  readyMessageSchema,
  type Backend,
  type BackendMessage,
  type CnnModel,
  type Manifest,
  type MethodArgs,
  type MethodResult,
  type ProtocolMethod,
} from "@nnspec/spec";
import { IncompleteError, errorMessage } from "../errors.ts";
import { BackendLoadError } from "../load-backend.ts";

/** A program that speaks the pipe protocol (docs/backend-protocol.md) on its stdin/stdout. */
export interface ProcessSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** How messages name it, e.g. `backend "cmd:python3 b.py"`. */
  readonly label: string;
  /** A refused hello's message is shown as it is (the judge's own server, whose loader names the backend). */
  readonly passStartErrors?: boolean;
}

export interface StartOptions {
  /** The hello message's options: what the backend is created with (e.g. {precision: "float32"}). */
  readonly options?: Record<string, unknown>;
  /** How long the program may take to answer hello. */
  readonly readyTimeoutMs?: number;
  /** Stops waiting for the handshake (the process is killed). */
  readonly signal?: AbortSignal;
}

/** `ready` within this many seconds of the start, or the backend counts as not starting (exit 3). */
export const DEFAULT_READY_TIMEOUT_S = 120;
/** After stdin closes, a backend has this long to exit before it is killed. */
const EXIT_GRACE_MS = 3000;
const DISPOSE_TIMEOUT_MS = 10_000;
const STDERR_KEEP = 16 * 1024;
const readyEnvelope = readyMessageSchema.extend({ manifest: z.unknown() });

/** The backend process stopped (exit, signal, broken protocol): every pending call rejects with this. */
export class BackendProcessError extends Error {
  override name = "BackendProcessError";
}

/** The backend replied to a call with an error: its own name, message and (if sent) stack. */
export class RemoteError extends Error {
  constructor(remoteName: string, message: string, stack?: string) {
    super(message);
    this.name = remoteName || "Error";
    this.stack = stack && stack.length > 0 ? stack : `${this.name}: ${message}`;
  }
}

/** A Backend whose methods are calls into another process. */
export interface RemoteBackend extends Backend {
  /** Why the process cannot serve any more; undefined while it can. */
  lostReason(): string | undefined;
  /** Resolves (never rejects) with the reason once the process is gone or unusable. */
  readonly lost: Promise<string>;
  /** The end of what the process wrote on stderr. */
  stderrTail(): string;
  /** Kill its whole process group now. */
  kill(): void;
  /** backend.dispose, close stdin, wait for the exit (then kill). Idempotent. */
  close(): Promise<void>;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal === "SIGKILL") return "was killed (SIGKILL: out of memory, or killed from outside)";
  if (signal) return `was killed by ${signal}`;
  return `exited with code ${code}`;
}

/** The last lines of a text, short enough for a report line. */
function tail(text: string, lines = 20, chars = 2000): string {
  const t = text.trimEnd().split("\n").slice(-lines).join("\n");
  return t.length > chars ? `…${t.slice(-chars)}` : t;
}

interface Pending {
  readonly method: ProtocolMethod;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

class Connection {
  readonly child: ChildProcessWithoutNullStreams;
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private reason: string | undefined;
  private stderr = "";
  private exitTimer: NodeJS.Timeout | undefined;
  private closing = false;
  readonly lost: Promise<string>;
  private resolveLost!: (reason: string) => void;
  private handshake: { resolve(m: Manifest): void; reject(e: Error): void } | undefined;
  private readonly onParentExit = () => this.kill();

  constructor(readonly spec: ProcessSpec) {
    this.lost = new Promise((r) => {
      this.resolveLost = r;
    });
    // Its own process group: a timeout or a crash kills the backend and whatever it started, and a Ctrl-C in the
    // terminal reaches the judge only (which then stops the backend itself).
    this.child = spawn(spec.command, [...spec.args], {
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
      env: { ...process.env, ...spec.env },
    });
    process.on("exit", this.onParentExit);
    this.child.on("error", (err: NodeJS.ErrnoException) => {
      this.fail(
        err.code === "ENOENT"
          ? `could not be started: ${spec.command}: command not found`
          : `could not be started: ${err.message}`,
      );
    });
    this.child.stdin.on("error", () => undefined); // EPIPE once it has died: its exit says why
    this.child.stdout.on("data", (chunk: Buffer) => {
      if (this.reason) return;
      try {
        for (const m of this.decoder.push(chunk)) this.receive(m);
      } catch (err) {
        this.fail(
          `broke the protocol: ${errorMessage(err)} (stdout is the protocol channel: a backend logs to stderr)`,
        );
      }
    });
    this.child.stderr.setEncoding("utf8").on("data", (d: string) => {
      this.stderr = (this.stderr + d).slice(-STDERR_KEEP);
      if (process.env.NNSPEC_DEBUG === "1") process.stderr.write(d);
    });
    this.child.on("exit", (code, signal) => {
      // Described when settled: the last of stderr (V8's "heap out of memory") may arrive after the exit event.
      const why = () => `${describeExit(code, signal)}${/out of memory/i.test(this.stderr) ? " (out of memory)" : ""}`;
      // Replies still in the pipe arrive before "close"; a grandchild holding the pipe open must not stall us.
      this.exitTimer = setTimeout(() => this.fail(why()), 250);
      this.child.once("close", () => this.fail(why()));
    });
  }

  stderrTail(): string {
    return tail(this.stderr);
  }

  lostReason(): string | undefined {
    return this.reason;
  }

  private describe(reason: string): string {
    const t = this.stderrTail();
    return `${this.spec.label} ${reason}${t ? `; its stderr ends with:\n${t}` : " (nothing on its stderr)"}`;
  }

  /** The process is gone or unusable: settle everything waiting on it, once. */
  fail(reason: string): void {
    if (this.reason !== undefined) return;
    this.reason = this.closing ? "was closed" : reason;
    clearTimeout(this.exitTimer);
    process.off("exit", this.onParentExit);
    const err = new BackendProcessError(this.describe(this.reason));
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.handshake?.reject(err);
    this.handshake = undefined;
    this.kill();
    this.resolveLost(this.describe(this.reason));
  }

  kill(): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, "SIGKILL");
    } catch {
      this.child.kill("SIGKILL");
    }
  }

  send(message: Record<string, unknown>): void {
    for (const chunk of encodeFrame(message)) this.child.stdin.write(chunk);
  }

  hello(options: Record<string, unknown>): Promise<Manifest> {
    return new Promise((resolve, reject) => {
      if (this.reason) return reject(new BackendProcessError(this.describe(this.reason)));
      this.handshake = { resolve, reject };
      this.send({ type: "hello", protocol: PROTOCOL_VERSION, options });
    });
  }

  call<M extends ProtocolMethod>(method: M, args: MethodArgs<M>): Promise<MethodResult<M>> {
    return new Promise((resolve, reject) => {
      if (this.reason) return reject(new BackendProcessError(this.describe(this.reason)));
      const id = this.nextId++;
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject });
      this.send({ type: "call", id, method, args });
    });
  }

  private receive(raw: Record<string, unknown>): void {
    if (raw.type === "ready" && this.handshake) {
      // A bad manifest is the backend's input error (exit 2), named field by field, not a broken pipe.
      const ready = readyEnvelope.safeParse(raw);
      if (ready.success) {
        try {
          this.handshake.resolve(parseWith(manifestSchema, ready.data.manifest, `manifest of ${this.spec.label}`));
        } catch (err) {
          this.handshake.reject(err as Error);
        }
        this.handshake = undefined;
        return;
      }
    }
    const parsed = backendMessageSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(
        `a malformed ${JSON.stringify(raw.type ?? "?")} message (${issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "?"})`,
      );
    }
    const m: BackendMessage = parsed.data;
    if (m.type === "ready") {
      if (!this.handshake) throw new Error(`a "ready" message when none was due`);
      this.handshake.resolve(m.manifest);
      this.handshake = undefined;
      return;
    }
    if (m.id === 0 && m.type === "error") {
      if (!this.handshake)
        throw new Error(`an error for call 0 after the handshake: ${m.error.name}: ${m.error.message}`);
      const why = this.spec.passStartErrors
        ? m.error.message
        : `${this.spec.label} could not start: ${m.error.name === "Error" ? "" : `${m.error.name}: `}${m.error.message}`;
      this.handshake.reject(new BackendLoadError(why));
      this.handshake = undefined;
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) throw new Error(`a reply to call ${m.id}, which is not pending`);
    this.pending.delete(m.id);
    if (m.type === "error") {
      p.reject(new RemoteError(m.error.name, m.error.message, m.error.stack));
      return;
    }
    // A malformed result is that call's failure (the check reports it); the connection stays usable.
    try {
      p.resolve(
        parseWith(
          PROTOCOL_METHODS[p.method].result as z.ZodTypeAny,
          m.value,
          `${this.spec.label}: result of ${p.method}`,
        ),
      );
    } catch (err) {
      p.reject(err);
    }
  }

  async close(): Promise<void> {
    if (this.reason !== undefined) return;
    this.closing = true;
    const exited = new Promise<void>((r) => {
      void this.lost.then(() => r());
    });
    try {
      await Promise.race([
        this.call("backend.dispose", {}),
        new Promise((r) => setTimeout(r, DISPOSE_TIMEOUT_MS).unref()),
      ]);
    } catch {
      // A backend that cannot dispose is still closed below.
    }
    this.child.stdin.end();
    const grace = setTimeout(() => this.kill(), EXIT_GRACE_MS);
    await exited;
    clearTimeout(grace);
  }
}

function remoteModel(conn: Connection, handle: number, withOptimizerState: boolean): CnnModel {
  const call = <M extends ProtocolMethod>(
    method: M,
    extra: Omit<MethodArgs<M>, "model"> = {} as Omit<MethodArgs<M>, "model">,
  ) => conn.call(method, { model: handle, ...extra } as MethodArgs<M>);
  const model: CnnModel = {
    summary: () => call("model.summary"),
    forward: (x, n, options) => call("model.forward", { x, n, options }),
    backward: (labels) => call("model.backward", { labels: Array.from(labels, Number) }),
    gradients: () => call("model.gradients"),
    step: (sgd) => call("model.step", { sgd: { lr: sgd.lr, momentum: sgd.momentum, weightDecay: sgd.weightDecay } }),
    parameters: () => call("model.parameters"),
    buffers: () => call("model.buffers"),
    dispose: () => call("model.dispose"),
  };
  if (withOptimizerState) {
    model.optimizerState = () => call("model.optimizerState");
    model.setOptimizerState = (state) => call("model.setOptimizerState", { state });
  }
  return model;
}

/**
 * Start a protocol backend and shake hands: a Backend whose methods are calls to it. Throws BackendLoadError
 * (exit 2) when it cannot start, exits, or refuses hello; IncompleteError (exit 3) when it does not answer in time.
 */
export async function startProcessBackend(spec: ProcessSpec, o: StartOptions = {}): Promise<RemoteBackend> {
  const conn = new Connection(spec);
  const timeoutMs = o.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_S * 1000;
  let timer: NodeJS.Timeout | undefined;
  const onAbort = () => conn.fail("was stopped before it was ready");
  o.signal?.addEventListener("abort", onAbort);
  let manifest: Manifest;
  try {
    manifest = await Promise.race([
      conn.hello(o.options ?? {}),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new IncompleteError(
                `${spec.label} did not answer hello within ${timeoutMs / 1000} s${conn.stderrTail() ? `; its stderr ends with:\n${conn.stderrTail()}` : ""}`,
              ),
            ),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    const died = conn.lostReason();
    conn.fail("was stopped");
    if (o.signal?.aborted) throw new IncompleteError(`${spec.label}: ${errorMessage(o.signal.reason)}`);
    if (err instanceof BackendProcessError) {
      const t = conn.stderrTail();
      throw new BackendLoadError(
        `${spec.label} ${died ?? "stopped"} before it was ready${t ? `; its stderr ends with:\n${t}` : " (nothing on its stderr)"}`,
      );
    }
    throw err;
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener("abort", onAbort);
  }
  const backend: RemoteBackend = {
    manifest,
    lost: conn.lost,
    lostReason: () => conn.lostReason(),
    stderrTail: () => conn.stderrTail(),
    kill: () => conn.fail("was killed by the judge"),
    close: () => conn.close(),
    dispose: () => conn.close(),
  };
  const any = (prefix: string) => manifest.capabilities.some((c) => c.startsWith(prefix));
  if (any("net222.")) {
    (backend as { net222?: Backend["net222"] }).net222 = {
      forward: (config) => conn.call("net222.forward", { config }),
      gradients: (config) => conn.call("net222.gradients", { config }),
      step: (config, lr) => conn.call("net222.step", { config, lr }),
      train: (config, lr, steps) => conn.call("net222.train", { config, lr, steps }),
    };
  }
  if (any("cnn.")) {
    const withState = claims(backend, "cnn.optimizer-state");
    (backend as { cnn?: Backend["cnn"] }).cnn = {
      create: async (init) => {
        const { model } = await conn.call(
          "cnn.create",
          init.buffers ? { parameters: init.parameters, buffers: init.buffers } : { parameters: init.parameters },
        );
        return remoteModel(conn, model, withState);
      },
    };
  }
  return backend;
}
