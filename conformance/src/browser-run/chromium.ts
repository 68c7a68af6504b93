import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, readdirSync, readFileSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { UsageError } from "../errors.ts";
import { CHROMIUM_CANDIDATES, CHROMIUM_FLAGS } from "../browser/flags.ts";

/** Names looked up on $PATH after the usual install locations. */
const PATH_NAMES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"];

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const HOW = "give --chromium <path> or set NNSPEC_CHROMIUM to an installed Chromium or Chrome (nothing is downloaded)";

/**
 * The Chromium to drive: `--chromium <path>`, else $NNSPEC_CHROMIUM, else the usual install paths and $PATH.
 * Never downloads one; none found is a one-line usage error naming the flag and the variable.
 */
export function findChromium(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const given = flag ?? (env.NNSPEC_CHROMIUM || undefined);
  if (given !== undefined) {
    if (isExecutableFile(given)) return given;
    throw new UsageError(
      `no Chromium at ${given} (from ${flag !== undefined ? "--chromium" : "NNSPEC_CHROMIUM"}): ${HOW}`,
    );
  }
  const onPath = (env.PATH ?? "")
    .split(delimiter)
    .filter((d) => d !== "")
    .flatMap((d) => PATH_NAMES.map((n) => join(d, n)));
  const found = [...CHROMIUM_CANDIDATES, ...onPath].find(isExecutableFile);
  if (found) return found;
  throw new UsageError(
    `no Chromium or Chrome found (looked in /usr/bin, /snap/bin, /opt/google/chrome, /Applications and $PATH): ${HOW}`,
  );
}

export interface ChromiumProcess {
  /** Settles when the browser's main process exits (on its own or killed). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines Chromium wrote to stderr (for a message when it dies early). */
  stderrTail(): string;
  /** Kill the browser and every process it started (its own process group); idempotent, synchronous. */
  kill(): void;
}

/**
 * Processes whose command line mentions `marker` (Linux /proc; nothing elsewhere). Chromium's crash handler
 * detaches from the browser's process group, but names its database, which lies under the run's folder.
 */
function processesMentioning(marker: string): number[] {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  return pids.map(Number).filter((pid) => {
    if (pid === process.pid) return false;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
    } catch {
      return false;
    }
  });
}

/**
 * Start headless Chromium on `url` with the suite's flags (browser/flags.ts) and everything it writes (profile,
 * crash reports, caches) inside `workDir`. It runs in its own process group, so that `kill()` reaches its
 * renderer, GPU and zygote processes too.
 */
export function launchChromium(executable: string, url: string, workDir: string): ChromiumProcess {
  const args = [
    ...CHROMIUM_FLAGS,
    "--enable-unsafe-webgpu",
    `--user-data-dir=${join(workDir, "profile")}`,
    "--no-default-browser-check",
    "--mute-audio",
    url,
  ];
  // Chromium's temporary files (its singleton socket folder among them) go in workDir too, unless that makes the
  // socket's path longer than a Unix socket path may be (108 bytes): then /tmp.
  const tmp = `${workDir}/org.chromium.Chromium.XXXXXX/SingletonSocket`.length < 100 ? workDir : "/tmp";
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: join(workDir, "config"),
    XDG_CACHE_HOME: join(workDir, "cache"),
    TMPDIR: tmp,
  };
  const child: ChildProcess = spawn(executable, args, { detached: true, stdio: ["ignore", "ignore", "pipe"], env });
  let tail = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    tail = (tail + d).slice(-4000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once("exit", (code, signal) => done({ code, signal }));
    child.once("error", () => done({ code: null, signal: null }));
  });
  let killed = false;
  const kill = () => {
    if (killed || child.pid === undefined) return;
    killed = true;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // The group is already gone.
    }
    for (const pid of processesMentioning(workDir)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
  };
  return {
    exited,
    stderrTail: () =>
      tail
        .trim()
        .split("\n")
        .filter((l) => l.trim() !== "")
        .slice(-3)
        .join(" | "),
    kill,
  };
}
