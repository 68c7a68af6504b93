import { commands } from "@vitest/browser/context";
import { FixtureReadError, resolveAgainst, type FixtureIO } from "@nnspec/fixtures/core";
import type { FixtureReadReply } from "./protocol.ts";

/**
 * Golden files for a conformance run inside a browser page (vitest browser mode): every read is a call to the
 * vitest server's file commands (registered by `browserFixtureCommands` in the browser project's config), which
 * read the same files the Node run reads. Binary files travel as base64.
 */
export async function browserFixtureIO(): Promise<FixtureIO> {
  const info = await commands.nnspecFixtureInfo();
  const read = async (path: string, encoding: "utf8" | "base64"): Promise<string> => {
    const r: FixtureReadReply = await commands.nnspecReadFixture(path, encoding);
    if (!r.ok) throw new FixtureReadError(path, r.missing, r.message);
    return r.data;
  };
  return {
    readText: (path) => read(path, "utf8"),
    readBytes: async (path) => base64Bytes(await read(path, "base64")),
    listJson: (dir) => commands.nnspecListFixtures(dir),
    resolve: (path) => resolveAgainst(info.cwd, path),
    fixtureDirs: info.fixtureDirs,
  };
}

function base64Bytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
