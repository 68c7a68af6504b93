import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { benchResultsSchema, parseWith } from "@nnspec/spec";
import { writeFileAtomic } from "../plot/atomic-write.ts";
import { UsageError } from "@nnspec/conformance";

export const SCOREBOARD_START = "<!-- scoreboard:start -->";
export const SCOREBOARD_END = "<!-- scoreboard:end -->";

/** `readme` with the text between the scoreboard markers replaced by `scoreboard` (markers kept). */
export function replaceScoreboard(readme: string, scoreboard: string, readmePath = "README.md"): string {
  const start = readme.indexOf(SCOREBOARD_START);
  const end = readme.indexOf(SCOREBOARD_END);
  if (start < 0 || end < 0 || end < start) {
    throw new UsageError(
      `${readmePath}: needs the markers ${SCOREBOARD_START} and ${SCOREBOARD_END} (in that order) where the scoreboard goes`,
    );
  }
  if (readme.indexOf(SCOREBOARD_START, start + 1) >= 0)
    throw new UsageError(`${readmePath}: ${SCOREBOARD_START} appears more than once`);
  return `${readme.slice(0, start + SCOREBOARD_START.length)}\n${scoreboard.trim()}\n${readme.slice(end)}`;
}

/**
 * Copy `<benchDir>/scoreboard.md` into the README between the markers. The results.json beside it must validate
 * (so what lands in the README is a finished bench run's output, never a stray or hand-edited file).
 */
export async function updateReadme(o: {
  benchDir: string;
  readme: string;
}): Promise<{ readme: string; scoreboard: string; startedAt: string; mode: string }> {
  const scoreboardPath = resolve(o.benchDir, "scoreboard.md");
  const resultsPath = join(dirname(scoreboardPath), "results.json");
  for (const p of [scoreboardPath, resultsPath])
    if (!existsSync(p))
      throw new UsageError(`${p} not found: run \`pnpm nnspec bench\` first (or pass the bench folder)`);
  const results = parseWith(benchResultsSchema, JSON.parse(readFileSync(resultsPath, "utf8")), resultsPath);
  const readmePath = resolve(o.readme);
  const updated = replaceScoreboard(readFileSync(readmePath, "utf8"), readFileSync(scoreboardPath, "utf8"), readmePath);
  await writeFileAtomic(readmePath, updated);
  return { readme: readmePath, scoreboard: scoreboardPath, startedAt: results.startedAt, mode: results.settings.mode };
}
