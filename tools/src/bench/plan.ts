import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { REFERENCE_RECIPE, type BenchSettings } from "@nnspec/spec";
import { WORKSPACE_RUNS } from "../workspace-backends.ts";
import { cliInt, cliPositiveNumber } from "../train/cli-options.ts";
import { UsageError } from "@nnspec/conformance";
import type { BenchJob } from "./protocol.ts";
import { browserTargets } from "./browser.ts";

/** One row of the bench: a backend configuration in its own Node process, or a browser backend in a Chromium page. */
export interface BenchTarget {
  readonly id: string;
  readonly kind: "backend" | "browser";
  /** Backend specifier; for a browser target, the backend package's entry file (imported by the page). */
  readonly specifier: string;
  readonly options: Record<string, unknown>;
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** A row id from a package name or path: its last segment, without a script extension. */
const baseName = (specifier: string) =>
  specifier
    .replace(/\/+$/, "")
    .split("/")
    .at(-1)!
    .replace(/\.(m?[jt]s)$/, "")
    .replace(/[^a-z0-9-]+/gi, "-")
    .toLowerCase() || "backend";

const idOf = (backend: string, options: Record<string, unknown>) =>
  typeof options.precision === "string" ? `${backend}-${options.precision}` : backend;

/** The workspace's configurations (WORKSPACE_RUNS), named "reference-float64", "tfjs-wasm", … */
export const WORKSPACE_TARGETS: readonly BenchTarget[] = WORKSPACE_RUNS.map((r) => ({
  id: idOf(r.backend, r.options),
  kind: "backend",
  specifier: r.backend,
  options: r.options,
}));

/** Node configurations, then every browser backend ("gpujs-chromium", …) found in the workspace. */
export function workspaceTargets(repoRoot = REPO_ROOT): BenchTarget[] {
  return [
    ...WORKSPACE_TARGETS,
    ...browserTargets(repoRoot).map(
      (b): BenchTarget => ({ id: b.id, kind: "browser", specifier: b.entry, options: {} }),
    ),
  ];
}

/**
 * `--backends a,b`: workspace ids ("reference-float32", "gpujs-chromium"), or any backend specifier (package name or path) with an
 * optional precision suffix "@float32"/"@float64" passed to the backend as its precision option, or a backend entry file
 * with "@chromium" to bench it in a Chromium page.
 */
export function parseTargets(list: string | undefined, repoRoot = REPO_ROOT): BenchTarget[] {
  const workspace = workspaceTargets(repoRoot);
  if (list === undefined) return workspace;
  const items = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0)
    throw new UsageError("nnspec bench: option --backends: expected a comma-separated list of backends");
  const targets = items.map((item): BenchTarget => {
    const known = workspace.find((t) => t.id === item);
    if (known) return known;
    // "<entry file>@chromium": any backend module benched in a Chromium page (its folder is served to the page).
    const page = /^(.+?)@chromium$/.exec(item);
    if (page) {
      const entry = resolve(page[1]!);
      if (!existsSync(entry) || !statSync(entry).isFile())
        throw new UsageError(
          `nnspec bench: option --backends: "${item}": ${entry} is not a file (@chromium takes a backend's entry module)`,
        );
      return { id: `${baseName(page[1]!)}-chromium`, kind: "browser", specifier: entry, options: {} };
    }
    const m = /^(.+?)@(float32|float64)$/.exec(item);
    const specifier = m ? m[1]! : item;
    const options = m ? { precision: m[2]! } : {};
    return { id: idOf(baseName(specifier), options), kind: "backend", specifier, options };
  });
  const ids = targets.map((t) => t.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw new UsageError(`nnspec bench: option --backends: "${dup}" is listed twice`);
  return targets;
}

export const benchCliSchema = z
  .object({
    backends: z.string().optional(),
    quick: z.boolean().default(false),
    epochs: cliInt(1).optional(),
    limit: cliInt(1).optional(),
    testLimit: cliInt(1).optional(),
    seed: cliInt(0).pipe(z.number().max(0xffffffff, "must fit in 32 bits")),
    reps: cliInt(1).optional(),
    out: z.string().min(1),
    timeoutS: cliPositiveNumber,
    peer: z.boolean(),
    peers: z.string().optional(),
    dataDir: z.string().min(1).optional(),
  })
  .strict();
export type BenchCliOptions = z.infer<typeof benchCliSchema>;

/**
 * Comparison rows after the backends, each in its own process: the PyTorch peer (every speed figure and MNIST
 * training) and the same CNN exported to ONNX, in onnxruntime-node (native CPU) and onnxruntime-web's wasm build
 * (SIMD + threads, in Node) — inference only.
 */
export const PEER_IDS = ["pytorch", "ort-node", "ort-web"] as const;
export type PeerId = (typeof PEER_IDS)[number];

/** `--peers a,b` (default: all of PEER_IDS, in that order); `--no-peer`: none. */
export function parsePeers(o: Pick<BenchCliOptions, "peer" | "peers">): PeerId[] {
  if (!o.peer) return [];
  if (o.peers === undefined) return [...PEER_IDS];
  const items = o.peers
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0)
    throw new UsageError(
      `nnspec bench: option --peers: expected a comma-separated list of ${PEER_IDS.join(", ")} (no peers: --no-peer)`,
    );
  const unknown = items.find((i) => !(PEER_IDS as readonly string[]).includes(i));
  if (unknown !== undefined)
    throw new UsageError(`nnspec bench: option --peers: unknown peer "${unknown}" (expected ${PEER_IDS.join(", ")})`);
  const dup = items.find((id, i) => items.indexOf(id) !== i);
  if (dup) throw new UsageError(`nnspec bench: option --peers: "${dup}" is listed twice`);
  return PEER_IDS.filter((p) => items.includes(p));
}

/** The default MNIST budget (stated once: --help, the timeout scaling and the settings all read it). */
export const DEFAULT_BUDGET = { epochs: 1, limit: 8192, testLimit: 1000 } as const;

/**
 * The budget. Default: one epoch on an 8192-image subset, evaluated on 1000 test images (a few minutes per backend
 * on 2 cores); --quick: 256 images, for tests; --epochs N: the full figure, all 60000 images, all 10000 test images.
 */
export function benchSettings(o: BenchCliOptions): {
  settings: BenchSettings;
  reps: BenchJob["reps"];
  net222TargetMs: number;
} {
  const mode = o.quick ? "quick" : o.epochs !== undefined ? "full" : "default";
  const base = {
    quick: { epochs: 1, limit: 256, testLimit: 200, reps: 2 },
    // 64 OneCycle steps: the shortest budget that lands well clear of chance (tfjs-wasm: 55.8 %); 16 steps left every backend at 12.6 %.
    default: { ...DEFAULT_BUDGET, reps: 5 },
    full: { epochs: o.epochs ?? 15, limit: null, testLimit: null, reps: 7 },
  }[mode];
  const reps = o.reps ?? base.reps;
  const settings: BenchSettings = {
    mode,
    epochs: o.epochs ?? base.epochs,
    limit: o.limit ?? base.limit,
    testLimit: o.testLimit ?? base.testLimit,
    batchSize: REFERENCE_RECIPE.batchSize,
    maxLr: REFERENCE_RECIPE.schedule.kind === "onecycle" ? REFERENCE_RECIPE.schedule.maxLr : 0.05,
    seed: o.seed,
    reps,
    timeoutSeconds: o.timeoutS,
  };
  return {
    settings,
    reps: { train: reps, infer128: reps, infer1: Math.max(10, 4 * reps), net222: reps },
    net222TargetMs: mode === "quick" ? 50 : 300,
  };
}
