/**
 * The file commands the vitest browser project registers (browser/commands.ts, run by the vitest server in Node)
 * and the browser-side FixtureIO calls (browser/fixture-io.ts). Types only: safe on both sides.
 */
export type FixtureReadReply =
  | { readonly ok: true; readonly data: string }
  | { readonly ok: false; readonly missing: boolean; readonly message: string };

export interface FixtureServerInfo {
  /** The vitest server's working folder: relative fixture paths are taken from it, as in Node. */
  readonly cwd: string;
  readonly fixtureDirs: { readonly net222: string; readonly cnn: string };
}

declare module "@vitest/browser/context" {
  interface BrowserCommands {
    /** A golden file as UTF-8 text or base64 (binary .bin tensors). */
    nnspecReadFixture: (path: string, encoding: "utf8" | "base64") => Promise<FixtureReadReply>;
    /** Absolute paths of the *.json files in a folder, sorted; [] when it does not exist. */
    nnspecListFixtures: (dir: string) => Promise<string[]>;
    nnspecFixtureInfo: () => Promise<FixtureServerInfo>;
  }
}

declare module "@vitest/browser/context" {
  interface BrowserCommands {
    /** The in-page bench's job file (unvalidated JSON: the page checks it with benchJobSchema). */
    nnspecBenchJob: () => Promise<unknown>;
    /** One bench protocol message (a JSON line) for the parent `nnspec bench`. */
    nnspecBenchSend: (line: string) => Promise<void>;
  }
}
