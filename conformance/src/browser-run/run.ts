import { existsSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { resolve as esmResolve } from "import-meta-resolve";
import { z } from "zod";
import { manifestSchema, parseWith, type Manifest } from "@nnspec/spec";
import type { CheckResult } from "../checks.ts";
import { formatProgressLine, formatRunHeader, writeJsonAtomic } from "../conformance-run.ts";
import { IncompleteError, UsageError } from "../errors.ts";
import { cleanupOnExit } from "../cli/run-main.ts";
import { BackendLoadError, resolveBackendEntry, type LoadOptions } from "../load-backend.ts";
import { buildReport, checkResultSchema, type ConformanceReport } from "../report.ts";
import { formatReportSummary } from "../report-format.ts";
import { findChromium, launchChromium, type ChromiumProcess } from "./chromium.ts";
import { decodeMessage } from "./protocol.ts";
import { loadVite, startPageServer, type PageServer } from "./server.ts";

/** `--browser-timeout` default, in seconds: the whole run (server start, Chromium, every check). */
export const DEFAULT_BROWSER_TIMEOUT_S = 900;

export interface BrowserRunOptions extends LoadOptions {
  readonly backend: string;
  readonly backendOptions?: Record<string, unknown>;
  readonly onlyFixtures?: readonly string[];
  readonly extraFixtures?: readonly string[];
  readonly reportPath?: string;
  /** Chromium or Chrome executable (`--chromium`); default $NNSPEC_CHROMIUM, then the usual install paths. */
  readonly chromium?: string;
  /** Seconds before the run is abandoned (exit 3); default DEFAULT_BROWSER_TIMEOUT_S. */
  readonly timeoutS?: number;
  readonly log?: (line: string) => void;
}

const messageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("backend"), manifest: z.unknown() }),
  z.object({ type: z.literal("start"), total: z.number().int().nonnegative() }),
  z.object({
    type: z.literal("result"),
    index: z.number().int().nonnegative(),
    total: z.number().int().nonnegative(),
    result: checkResultSchema,
  }),
  z.object({ type: z.literal("done") }),
  z.object({
    type: z.literal("error"),
    phase: z.enum(["load", "create", "suite", "run"]),
    name: z.string(),
    message: z.string(),
    stack: z.string().optional(),
  }),
]);

/** Errors the page reports that are the user's input (bad options, bad golden file), as in a Node run: exit 2. */
const INPUT_ERRORS = new Set(["SpecValidationError", "UsageError", "BackendLoadError", "FixtureReadError"]);

const PHASE_WORDS = {
  load: "importing the backend",
  create: "creating the backend",
  suite: "collecting the checks",
  run: "running the checks",
};

/** The folder of the nearest package.json above `file` (the file's own folder when there is none). */
function packageRoot(file: string): string {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) return dirname(file);
  }
}

/** `dir` and every node_modules folder Node's resolution would look in from it. */
function withNodeModules(dir: string): string[] {
  const out = [dir];
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, "node_modules"))) out.push(realpathSync(join(d, "node_modules")));
    if (dirname(d) === d) return out;
  }
}

/**
 * Run the whole suite inside headless Chromium against a backend found anywhere (package name or path), printing
 * exactly what the Node run prints. A Vite dev server (vite comes with vitest, the judge's optional peer) serves the
 * page (page.ts), the backend and the golden files; the page posts each result back as it completes.
 * Throws UsageError (exit 2) for bad input and IncompleteError (exit 3) for a run that did not finish.
 */
export async function runConformanceInBrowser(o: BrowserRunOptions): Promise<ConformanceReport> {
  const log = o.log ?? ((l: string) => console.log(l));
  const timeoutS = o.timeoutS ?? DEFAULT_BROWSER_TIMEOUT_S;
  const executable = findChromium(o.chromium);
  const vite = await loadVite();
  const entryUrl = resolveBackendEntry(o.backend, o);
  if (!entryUrl.startsWith("file:"))
    throw new BackendLoadError(`backend "${o.backend}" resolves to ${entryUrl}, not a file`);
  const backendFile = realpathSync(fileURLToPath(entryUrl));
  const self = fileURLToPath(import.meta.url);
  // page.ts beside this file in the sources, page.js in the published dist/.
  const pageFile = realpathSync(join(dirname(self), `page${extname(self)}`));
  const judgeRoot = packageRoot(pageFile);
  const backendRoot = packageRoot(backendFile);
  const dependencyRoot = (pkg: string) => packageRoot(realpathSync(fileURLToPath(esmResolve(pkg, import.meta.url))));
  const fixtureFiles = [...(o.onlyFixtures ?? []), ...(o.extraFixtures ?? [])].map((f) => resolve(f));

  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), "nnspec-"));
  const results: CheckResult[] = [];
  let manifest: Manifest | undefined;
  let total: number | undefined;
  let chromium: ChromiumProcess | undefined;
  let server: PageServer | undefined;
  let starting: Promise<PageServer> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const progress = () => `${results.length}/${total ?? "?"} checks done`;

  // The run ends once: done, a fatal message, the timeout, or Chromium gone.
  let finish!: (err?: Error) => void;
  let over = false;
  const ended = new Promise<void>((done, fail) => {
    finish = (err) => {
      if (over) return;
      over = true;
      if (err) fail(err);
      else done();
    };
  });
  // Handled here, awaited below: a timeout during the server's start must not count as an unhandled rejection.
  ended.catch(() => undefined);
  const onMessage = (text: string) => {
    if (over) return; // a straggler after the end (the page is being stopped)
    try {
      const parsed = messageSchema.safeParse(decodeMessage(text));
      if (!parsed.success)
        throw new IncompleteError(
          `browser run incomplete: the page sent a malformed message (${parsed.error.issues[0]?.message ?? "?"})`,
        );
      const m = parsed.data;
      if (m.type === "backend") {
        manifest = parseWith(manifestSchema, m.manifest, `manifest of backend "${o.backend}"`);
        if (manifest.environment !== "browser") {
          throw new UsageError(
            `backend "${o.backend}" runs in Chromium but its manifest says environment "${manifest.environment}" (a backend reports "browser" there)`,
          );
        }
      } else if (m.type === "start") {
        if (!manifest) throw new IncompleteError("browser run incomplete: the page started before naming its backend");
        total = m.total;
        log(formatRunHeader(manifest, m.total));
      } else if (m.type === "result") {
        if (m.index !== results.length)
          throw new IncompleteError(`browser run incomplete: result ${m.index + 1} arrived after ${results.length}`);
        results.push(m.result);
        log(formatProgressLine(m.result, m.index, m.total));
      } else if (m.type === "done") {
        if (!manifest || results.length !== total)
          throw new IncompleteError(`browser run incomplete: the page ended with ${progress()}`);
        finish();
      } else {
        const detail = `${m.name}: ${m.message}`;
        if (m.phase === "load")
          throw new BackendLoadError(`cannot load backend "${o.backend}" in Chromium: ${m.message}`);
        if (INPUT_ERRORS.has(m.name)) throw new UsageError(m.message);
        // As in Node (loadBackend): a createBackend() that throws is the backend's fault, named as such.
        if (m.phase === "create")
          throw new BackendLoadError(`backend "${o.backend}": createBackend() failed in Chromium: ${m.message}`);
        // One line, as every nnspec error; the page's stack with NNSPEC_DEBUG=1.
        const stack = process.env.NNSPEC_DEBUG === "1" ? (m.stack ?? "").split("\n").slice(1).join("\n") : "";
        throw new IncompleteError(
          `browser run incomplete: the page failed while ${PHASE_WORDS[m.phase]} (${progress()}): ${detail}${stack ? `\n${stack}` : ""}`,
        );
      }
    } catch (err) {
      finish(err as Error);
    }
  };

  // Chromium runs in its own process group: a Ctrl-C, a crash or process.exit() must still reach it.
  const cleanup = () => {
    chromium?.kill();
    rmSync(work, { recursive: true, force: true, maxRetries: 3 });
  };
  const dropCleanup = cleanupOnExit(cleanup);
  const onExit = () => chromium?.kill();
  process.once("exit", onExit);
  try {
    timer = setTimeout(
      () =>
        finish(
          new IncompleteError(
            `browser run incomplete: --browser-timeout ${timeoutS} s reached (${progress()}); Chromium stopped`,
          ),
        ),
      timeoutS * 1000,
    );
    starting = startPageServer(vite, {
      root: work,
      pageFile,
      backendFile,
      allow: [
        ...new Set([
          work,
          ...withNodeModules(judgeRoot),
          dependencyRoot("@nnspec/spec"),
          dependencyRoot("@nnspec/fixtures"),
          ...withNodeModules(backendRoot),
          vite.searchForWorkspaceRoot(backendRoot),
          ...fixtureFiles.map((f) => dirname(f)),
        ]),
      ],
      fixtureRoots: fixtureFiles.map((f) => dirname(f)),
      config: {
        backend: o.backend,
        backendOptions: o.backendOptions ?? {},
        cwd: process.cwd(),
        ...(o.onlyFixtures ? { onlyFixtures: o.onlyFixtures.map((f) => resolve(f)) } : {}),
        ...(o.extraFixtures ? { extraFixtures: o.extraFixtures.map((f) => resolve(f)) } : {}),
      },
      onMessage,
    });
    // The timeout covers the server's start too.
    server = await Promise.race([starting, ended.then(() => starting!)]);
    chromium = launchChromium(executable, server.url, work);
    void chromium.exited.then(({ code, signal }) => {
      const tail = chromium?.stderrTail() ?? "";
      finish(
        new IncompleteError(
          `browser run incomplete: Chromium exited (${signal ?? `code ${code}`}) after ${((Date.now() - started) / 1000).toFixed(0)} s (${progress()})${tail ? `: ${tail}` : ""}`,
        ),
      );
    });
    await ended;
    const report = buildReport(manifest!, results);
    log(formatReportSummary(report));
    if (o.reportPath) writeJsonAtomic(o.reportPath, report);
    return report;
  } finally {
    clearTimeout(timer);
    chromium?.kill();
    if (chromium) await Promise.race([chromium.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    if (server) await server.close().catch(() => undefined);
    else void starting?.then((s) => s.close()).catch(() => undefined); // still starting when the run ended
    dropCleanup();
    process.off("exit", onExit);
    await rm(work, { recursive: true, force: true, maxRetries: 3 });
  }
}
