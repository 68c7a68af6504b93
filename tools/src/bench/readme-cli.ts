/**
 * `pnpm bench:readme [benchDir] [--readme README.md]`: copy the bench scoreboard into the README between
 * <!-- scoreboard:start --> and <!-- scoreboard:end -->. Default bench folder: out/bench.
 */
import { parseArgs } from "node:util";
import pc from "picocolors";
import { SpecValidationError } from "@nnspec/spec";
import { UsageError } from "@nnspec/conformance";
import { updateReadme } from "./readme.ts";

try {
  const { values, positionals } = parseArgs({
    options: { readme: { type: "string", default: "README.md" } },
    allowPositionals: true,
  });
  if (positionals.length > 1)
    throw new UsageError(`bench:readme: expected at most one bench folder, got ${positionals.join(" ")}`);
  const r = await updateReadme({ benchDir: positionals[0] ?? "out/bench", readme: values.readme });
  console.log(`bench:readme: copied ${r.scoreboard} (bench of ${r.startedAt}, mode ${r.mode}) into ${r.readme}`);
} catch (err) {
  if (
    !(
      err instanceof UsageError ||
      err instanceof SpecValidationError ||
      (err as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
    )
  )
    throw err;
  console.error(pc.red(`error: ${(err as Error).message}`));
  process.exitCode = 2;
}
