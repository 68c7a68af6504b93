import { resolve, sep } from "node:path";
import type { BrowserCommand, BrowserCommandContext } from "vitest/node";
import type { FixtureIO } from "@nnspec/fixtures";
import type { FixtureReadReply, FixtureServerInfo } from "./protocol.ts";

type FixturesModule = typeof import("@nnspec/fixtures");

/**
 * Server side (Node) of the browser conformance run's file access: register in a vitest browser project as
 * `browser: { commands: browserFixtureCommands(root) }`. Only files inside `root` are served: the page may ask
 * for any path, the server hands out nothing else.
 */
export function browserFixtureCommands(root: string): Record<string, BrowserCommand<never[]>> {
  const top = resolve(root);
  const inside = (path: string) => {
    const p = resolve(path);
    if (p !== top && !p.startsWith(top + sep)) throw new Error(`${p}: outside ${top}, not served to the browser`);
    return p;
  };
  // The vitest config is loaded by plain Node, which cannot import the workspace's .ts sources: the Node
  // FixtureIO is loaded through the project's Vite module runner on first use instead.
  let fixtures: Promise<FixturesModule> | undefined;
  const nodeIO = async (ctx: BrowserCommandContext): Promise<FixtureIO> => {
    fixtures ??= ctx.project.import<FixturesModule>("@nnspec/fixtures");
    return (await fixtures).nodeFixtureIO;
  };
  const read = async (
    ctx: BrowserCommandContext,
    path: string,
    encoding: "utf8" | "base64",
  ): Promise<FixtureReadReply> => {
    const io = await nodeIO(ctx);
    try {
      const p = inside(path);
      if (encoding === "utf8") return { ok: true, data: await io.readText(p) };
      const bytes = await io.readBytes(p);
      return { ok: true, data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64") };
    } catch (err) {
      // Not instanceof: the module runner's FixtureReadError class is not this file's.
      return { ok: false, missing: (err as { missing?: unknown }).missing === true, message: (err as Error).message };
    }
  };
  const commands = {
    nnspecReadFixture: (ctx, path: string, encoding: "utf8" | "base64") => read(ctx, path, encoding),
    nnspecListFixtures: async (ctx, dir: string) => (await nodeIO(ctx)).listJson(inside(dir)),
    nnspecFixtureInfo: async (ctx): Promise<FixtureServerInfo> => ({
      cwd: process.cwd(),
      fixtureDirs: (await nodeIO(ctx)).fixtureDirs,
    }),
  } satisfies Record<string, BrowserCommand<never[]>>;
  return commands;
}
