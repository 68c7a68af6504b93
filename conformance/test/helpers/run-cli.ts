import { spawn } from "node:child_process";
import { join, resolve } from "node:path";

/** The workspace root, for tests that spawn the CLI. */
export const ROOT = resolve(import.meta.dirname, "../../..");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run `nnspec <args>` in `cwd` as a user would (no workbook from the environment, no colours); `env` adds variables. */
export function runCli(args: string[], cwd = ROOT, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(ROOT, "conformance/bin/nnspec.js"), ...args], {
      cwd,
      env: { ...process.env, NNSPEC_WORKBOOK: "", NO_COLOR: "1", ...env },
    });
    let stdout = "",
      stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", fail);
    child.on("close", (status) => done({ status, stdout, stderr }));
  });
}
