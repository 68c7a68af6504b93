import { join } from "node:path";
import { benchResultsSchema, type BenchResults } from "@nnspec/spec";
import { writeFileAtomic } from "../plot/atomic-write.ts";
import { writeChart } from "../plot/line-chart.ts";
import { benchCharts } from "./charts.ts";
import { benchHtml } from "./html.ts";
import { scoreboardMarkdown } from "./scoreboard.ts";

export interface BenchFiles {
  results: string;
  scoreboard: string;
  report: string;
  charts: string[];
}

/**
 * Write results.json, scoreboard.md, report.html and the charts (PNG + SVG) into `out`, each file atomically
 * (temp name + rename). results.json goes last, so a complete results.json means the rest is there too.
 */
export async function writeBenchOutput(out: string, results: BenchResults): Promise<BenchFiles> {
  const r = benchResultsSchema.parse(results); // what we publish must validate against the spec
  const charts = await benchCharts(r);
  const chartPaths: string[] = [];
  for (const c of charts) chartPaths.push((await writeChart(join(out, "charts", c.name), c.chart)).png);
  const files = {
    results: join(out, "results.json"),
    scoreboard: join(out, "scoreboard.md"),
    report: join(out, "report.html"),
    charts: chartPaths,
  };
  await writeFileAtomic(files.scoreboard, scoreboardMarkdown(r));
  await writeFileAtomic(files.report, benchHtml(r, charts));
  await writeFileAtomic(files.results, `${JSON.stringify(r, null, 1)}\n`);
  return files;
}
