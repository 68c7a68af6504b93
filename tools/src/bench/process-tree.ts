import { readdirSync, readFileSync } from "node:fs";

/**
 * The process tree under a pid, from Linux /proc (empty elsewhere). Needed because Playwright starts Chromium in
 * a process group of its own: killing the vitest group alone would leave the browser running, and the page's
 * memory lives in Chromium's processes, not in vitest's. Only node: imports here — vitest.config.ts bundles it.
 */
function processTable(): Map<number, { ppid: number; pgid: number }> {
  const table = new Map<number, { ppid: number; pgid: number }>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return table;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read the fields after the last ")".
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const [, ppid, pgid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      table.set(Number(name), { ppid: Number(ppid), pgid: Number(pgid) });
    } catch {
      // The process ended while we looked.
    }
  }
  return table;
}

/** Every descendant of `pid` (children, grandchildren, …), not `pid` itself. */
export function descendantPids(pid: number, table = processTable()): number[] {
  const children = new Map<number, number[]>();
  for (const [p, { ppid }] of table) children.set(ppid, [...(children.get(ppid) ?? []), p]);
  const out: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/**
 * SIGKILL a process's whole group, every descendant and their groups (Chromium's group catches a renderer forked
 * between the look at /proc and the kill).
 */
export function killTree(pid: number): void {
  const table = processTable();
  const below = descendantPids(pid, table);
  // Never our own group (this process and whoever started it).
  const own = table.get(process.pid)?.pgid;
  const groups = new Set(
    below.map((p) => table.get(p)!.pgid).filter((g) => g > 1 && g !== own && g !== process.pid && g !== pid),
  );
  for (const target of [-pid, pid, ...below, ...[...groups].map((g) => -g)]) {
    try {
      process.kill(target, "SIGKILL");
    } catch {
      // Already gone, or (the group) none left.
    }
  }
}

/**
 * Chromium's page-side memory below `pid`: the RSS high-water mark (VmHWM) of its largest renderer process (the
 * page's JS, wasm and workers; Chromium also keeps a spare renderer and, headless, a WebUI one) plus that of its GPU
 * process (SwiftShader's WebGL). Null when no renderer is found.
 */
export function chromiumPeakRssBytes(pid: number): number | null {
  let renderer: number | null = null;
  let gpu = 0;
  for (const p of descendantPids(pid)) {
    try {
      // Chromium rewrites its command line into one space-separated string: match the flag either way.
      const cmdline = readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ");
      const type = /--type=(renderer|gpu-process)(?:\s|$)/.exec(cmdline)?.[1];
      if (!type || /--top-chrome-webui|--extension-process/.test(cmdline)) continue;
      const hwm = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (!hwm) continue;
      const bytes = Number(hwm[1]) * 1024;
      if (type === "gpu-process") gpu += bytes;
      else renderer = Math.max(renderer ?? 0, bytes);
    } catch {
      // Gone meanwhile.
    }
  }
  return renderer === null ? null : renderer + gpu;
}
