import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, relative, resolve, sep } from "node:path";
import { defaultFixtureIO, FixtureReadError } from "@nnspec/fixtures/core";
import type { Plugin, ViteDevServer } from "vite";
import { UsageError } from "../errors.ts";
import { ENDPOINT, type FixtureErrorReply, type PageConfig } from "./protocol.ts";

export interface PageServerOptions {
  /** Vite's root (a fresh temporary folder): its cache of pre-bundled dependencies goes in there. */
  readonly root: string;
  /** The page module (page.ts in the sources, page.js in the published dist/). */
  readonly pageFile: string;
  /** The backend's entry module. */
  readonly backendFile: string;
  /** Folders Vite may serve files from (the backend, the judge and their node_modules). */
  readonly allow: readonly string[];
  /** Folders whose golden files the page may read besides the committed ones; nothing outside them is served. */
  readonly fixtureRoots: readonly string[];
  readonly config: Omit<PageConfig, "fixtureDirs">;
  /** Each message the page posts, as raw JSON text. */
  onMessage(text: string): void;
}

export interface PageServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Cross-origin isolation: SharedArrayBuffer (threaded wasm, shared activations) works in the page. */
const ISOLATION = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

/** Largest message body accepted from the page. */
const MAX_BODY = 16 * 1024 * 1024;

/** A `/@fs/` URL for an absolute file path (POSIX separators). */
export function fsUrl(file: string): string {
  return `/@fs${encodeURI(file.split(sep).join("/")).replace(/[?#]/g, encodeURIComponent)}`;
}

/** Inside one of `roots` (or one of them itself)? The same rule as the vitest browser commands (browser/commands.ts). */
export function insideAny(path: string, roots: readonly string[]): string | undefined {
  const p = resolve(path);
  return roots.some((r) => p === resolve(r) || p.startsWith(resolve(r) + sep)) ? p : undefined;
}

/**
 * The judge's lazy imports the page never needs: the vitest-browser-mode IO (the page brings its own) and the
 * class-workbook suite (exceljs + fs). Stubbed so that Vite's dependency scan neither follows them into packages
 * that may not be installed (@vitest/browser, exceljs) nor pre-bundles them.
 */
function stubPlugin(suiteFile: string): Plugin {
  const STUBS: Record<string, { re: RegExp; code: string }> = {
    "\0nnspec-stub:fixture-io": {
      re: /(^|\/)browser\/fixture-io\.[jt]s$/,
      code: `export function browserFixtureIO() { throw new Error("nnspec --browser: the page passes its own FixtureIO"); }`,
    },
    "\0nnspec-stub:workbook": {
      re: /(^|\/)suites\/workbook\.[jt]s$/,
      code: `export function workbookChecks() { throw new Error("class workbooks are read in Node, not in nnspec conformance --browser"); }`,
    },
  };
  return {
    name: "nnspec-browser-run-stubs",
    enforce: "pre",
    resolveId(id, importer) {
      if (!importer || resolve(importer.replace(/[?#].*$/, "")) !== suiteFile) return null;
      return Object.entries(STUBS).find(([, s]) => s.re.test(id))?.[0] ?? null;
    },
    load(id) {
      return STUBS[id]?.code ?? null;
    },
  };
}

/** `virtual:nnspec-backend`: the backend entry's namespace as default export (page.ts imports it). */
function backendPlugin(backendFile: string): Plugin {
  const ID = "\0virtual:nnspec-backend";
  return {
    name: "nnspec-browser-run-backend",
    enforce: "pre",
    resolveId: (id) => (id === "virtual:nnspec-backend" ? ID : null),
    load: (id) =>
      id === ID ? `import * as backend from ${JSON.stringify(backendFile)};\nexport default backend;\n` : null,
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.destroy();
        fail(new Error(`message over ${MAX_BODY} bytes`));
      } else chunks.push(c);
    });
    req.on("end", () => done(Buffer.concat(chunks).toString("utf8")));
    req.on("error", fail);
  });
}

function sendJson(res: ServerResponse, status: number, data: unknown): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(data));
}

function pageHtml(pageUrl: string, config: PageConfig): string {
  // "<" escaped: the JSON sits in a <script> element.
  const json = JSON.stringify(config).replace(/</g, "\\u003c");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>nnspec conformance</title></head><body>
<script type="module">
const config = ${json};
import(${JSON.stringify(pageUrl)}).then((page) => page.main(config), (e) => fetch(${JSON.stringify(`${ENDPOINT}/message`)}, {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ type: "error", phase: "load", name: e.name, message: "cannot load the conformance page or the backend: " + e.message, stack: e.stack }),
}));
</script>
</body></html>
`;
}

export type Vite = typeof import("vite");

/** Vite, the judge's optional peer (vitest brings it); missing is a one-line usage error. */
export async function loadVite(): Promise<Vite> {
  try {
    return await import("vite");
  } catch {
    throw new UsageError("--browser needs vite: install vitest (which brings vite) next to @nnspec/conformance");
  }
}

/**
 * A Vite dev server on 127.0.0.1 (random port) for one browser run: the page, the backend and the judge as Vite
 * transforms them, golden files through a small read-only endpoint, and the page's messages back to Node.
 */
export async function startPageServer(vite: Vite, o: PageServerOptions): Promise<PageServer> {
  const suiteFile = resolve(dirname(o.pageFile), `../suite${o.pageFile.endsWith(".ts") ? ".ts" : ".js"}`);
  const rel = (f: string) => {
    const r = relative(o.root, f).split(sep).join("/");
    return r.startsWith(".") ? r : `./${r}`;
  };
  // Vite's scan entries: the page and the backend, so every dependency (CommonJS ones such as gpu.js included) is
  // discovered and pre-bundled before the page loads; the page is never reloaded mid-run.
  const { writeFile } = await import("node:fs/promises");
  const scanEntry = resolve(o.root, "scan-entry.js");
  await writeFile(
    scanEntry,
    `import ${JSON.stringify(rel(o.pageFile))};\nimport ${JSON.stringify(rel(o.backendFile))};\n`,
  );
  const server: ViteDevServer = await vite.createServer({
    configFile: false,
    root: o.root,
    cacheDir: resolve(o.root, "vite-cache"),
    logLevel: "error",
    clearScreen: false,
    appType: "custom",
    server: {
      middlewareMode: true,
      hmr: false,
      ws: false,
      watch: null,
      headers: ISOLATION,
      fs: { strict: true, allow: [...o.allow] },
    },
    optimizeDeps: { entries: [rel(scanEntry)], holdUntilCrawlEnd: true },
    plugins: [stubPlugin(suiteFile), backendPlugin(o.backendFile)],
  });
  const io = await defaultFixtureIO();
  const fixtureRoots = [io.fixtureDirs.net222, io.fixtureDirs.cnn, ...o.fixtureRoots];
  const config: PageConfig = { ...o.config, fixtureDirs: io.fixtureDirs };
  const html = pageHtml(fsUrl(o.pageFile), config);

  const fixture = async (url: URL, res: ServerResponse) => {
    const path = url.searchParams.get("path") ?? "";
    const inside = insideAny(path, fixtureRoots);
    if (!inside)
      return sendJson(res, 403, {
        missing: false,
        message: `${path}: outside the fixture folders, not served to the browser`,
      } satisfies FixtureErrorReply);
    try {
      const bytes = await io.readBytes(inside);
      res.writeHead(200, { "content-type": "application/octet-stream", "cache-control": "no-store" });
      res.end(bytes);
    } catch (err) {
      const missing = err instanceof FixtureReadError && err.missing;
      sendJson(res, missing ? 404 : 500, { missing, message: (err as Error).message } satisfies FixtureErrorReply);
    }
  };
  const list = async (url: URL, res: ServerResponse) => {
    const dir = url.searchParams.get("dir") ?? "";
    const inside = insideAny(dir, fixtureRoots);
    if (!inside)
      return sendJson(res, 403, {
        missing: false,
        message: `${dir}: outside the fixture folders, not listed to the browser`,
      } satisfies FixtureErrorReply);
    try {
      sendJson(res, 200, await io.listJson(inside));
    } catch (err) {
      sendJson(res, 500, { missing: false, message: (err as Error).message } satisfies FixtureErrorReply);
    }
  };

  const http = createHttpServer((req, res) => {
    for (const [k, v] of Object.entries(ISOLATION)) res.setHeader(k, v);
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const route = `${req.method ?? "GET"} ${url.pathname}`;
    const handle = async () => {
      if (route === "GET /" || route === "GET /index.html") {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
        return void res.end(html);
      }
      if (route === `POST ${ENDPOINT}/message`) {
        const text = await readBody(req);
        res.writeHead(204).end();
        return o.onMessage(text);
      }
      if (route === `GET ${ENDPOINT}/fixture`) return fixture(url, res);
      if (route === `GET ${ENDPOINT}/list`) return list(url, res);
      if (url.pathname.startsWith(`${ENDPOINT}/`))
        return sendJson(res, 404, { missing: false, message: `${route}: no such endpoint` });
      server.middlewares(req, res, () => {
        res.statusCode = 404;
        res.end();
      });
    };
    handle().catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { missing: false, message: (err as Error).message });
      else res.end();
    });
  });
  await new Promise<void>((done, fail) => {
    http.once("error", fail);
    http.listen(0, "127.0.0.1", () => done());
  });
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    async close() {
      http.closeAllConnections();
      await new Promise<void>((done) => http.close(() => done()));
      await server.close();
    },
  };
}
