import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { Resvg } from "@resvg/resvg-js";
import { z } from "zod";
import { parseWith } from "@nnspec/spec";
import { writeFileAtomic } from "./atomic-write.ts";

/**
 * A generic line chart (several named series of (x, y) points) rendered headless: Vega-Lite → Vega → SVG
 * (`View.toSVG()`, no canvas needed) → PNG with resvg. Used by the sweep error curves and meant for the train
 * loss/accuracy curves and bench charts too.
 */

// NaN/±Infinity are accepted and left out of the drawing (a diverging run still has a chart).
const anyNumber = z.union([z.number(), z.nan()]);
const pointSchema = z.object({ x: anyNumber, y: anyNumber });
const seriesSchema = z.object({ name: z.string().min(1), points: z.array(pointSchema) });
export const lineChartSchema = z.object({
  title: z.string(),
  /** One line, or several (one per array item). */
  subtitle: z.union([z.string(), z.array(z.string())]).optional(),
  xTitle: z.string(),
  yTitle: z.string(),
  yScale: z.enum(["linear", "log"]).default("linear"),
  /** Legend title (the quantity that tells the series apart, e.g. "η"). */
  seriesTitle: z.string().default("series"),
  series: z.array(seriesSchema).min(1),
  width: z.number().int().positive().default(640),
  height: z.number().int().positive().default(360),
  /** PNG pixels per SVG unit: 2 gives crisp text on high-density screens and in reports. */
  pngScale: z.number().positive().default(2),
  /** Fixed x range (e.g. [0, steps]) so a curve that stops early shows where it stopped; default: the data. */
  xDomain: z.tuple([z.number(), z.number()]).optional(),
  /**
   * Horizontal reference lines (e.g. a convergence threshold), drawn dashed. The optional label is written just
   * above the line at its right end; where curves may cross there, explain the line in the subtitle instead.
   */
  referenceLines: z.array(z.object({ y: z.number(), label: z.string().optional() })).default([]),
  /** Explicit y ticks (and grid lines) and their d3 format, e.g. [0.3, 0.5, 1, 2] with "~g"; default: decades on a log axis. */
  yTicks: z.array(z.number()).optional(),
  yFormat: z.string().optional(),
  /** Fixed y range (default: the data, rounded out by vega); a log axis then shows just the data's decade part. */
  yDomain: z.tuple([z.number(), z.number()]).optional(),
  /** Legend place and label width (long run labels need more than vega's 160 px). */
  legendOrient: z.enum(["right", "bottom"]).default("right"),
  legendLabelLimit: z.number().int().positive().optional(),
});
export type LineChartInput = z.input<typeof lineChartSchema>;
export type LineSeries = z.infer<typeof seriesSchema>;

export interface RenderedChart {
  svg: string;
  png: Buffer;
  /** PNG size in pixels. */
  pngWidth: number;
  pngHeight: number;
  /** Points left out because they cannot be drawn (NaN/±Infinity, or ≤ 0 on a log axis). */
  droppedPoints: number;
}

/** Fonts: vega writes `font-family` names into the SVG; resvg resolves them against the system fonts. */
export const CHART_FONT = "DejaVu Sans";
export const RESVG_FONTS = { loadSystemFonts: true, defaultFontFamily: CHART_FONT, sansSerifFamily: CHART_FONT };

function drawable(y: number, log: boolean): boolean {
  return Number.isFinite(y) && (!log || y > 0);
}

/** Powers of ten spanning the values (log axis ticks). */
function decades(ys: readonly number[]): number[] {
  if (ys.length === 0) return [];
  const lo = Math.floor(Math.log10(Math.min(...ys))),
    hi = Math.ceil(Math.log10(Math.max(...ys)));
  return Array.from({ length: hi - lo + 1 }, (_, i) => Number(`1e${lo + i}`));
}

/** The Vega-Lite spec of the chart (exported for tests and for callers who want to tweak it). */
export function lineChartSpec(input: LineChartInput): { spec: TopLevelSpec; droppedPoints: number } {
  const o = parseWith(lineChartSchema, input, "line chart options");
  const log = o.yScale === "log";
  const names = o.series.map((s) => s.name);
  if (new Set(names).size !== names.length)
    throw new Error(`line chart "${o.title}": series names must be unique (${names.join(", ")})`);
  let droppedPoints = 0;
  const values: { x: number; y: number; series: string }[] = [];
  for (const s of o.series)
    for (const p of s.points) {
      if (Number.isFinite(p.x) && drawable(p.y, log)) values.push({ x: p.x, y: p.y, series: s.name });
      else droppedPoints++;
    }
  const ys = values.map((v) => v.y);
  const shortest = Math.min(...o.series.map((s) => values.filter((v) => v.series === s.name).length));
  const refs = o.referenceLines.filter((r) => drawable(r.y, log));
  const line = {
    // Dots too when some series is short, so a 1-point series (or a sparse one) is still visible.
    mark: { type: "line" as const, strokeWidth: 2, clip: true, ...(shortest <= 30 ? { point: { size: 30 } } : {}) },
    encoding: {
      x: {
        field: "x",
        type: "quantitative" as const,
        title: o.xTitle,
        ...(o.xDomain ? { scale: { domain: o.xDomain, nice: false } } : {}),
        axis: { titleFontSize: 13, labelFontSize: 11 },
      },
      y: {
        field: "y",
        type: "quantitative" as const,
        title: o.yTitle,
        scale: {
          ...(log ? { type: "log" as const } : { zero: false }),
          ...(o.yDomain ? { domain: o.yDomain, nice: false } : {}),
        },
        // On a log axis, label and grid only the decades: the default 2…9 minor grid lines crowd the plot.
        axis: {
          titleFontSize: 13,
          labelFontSize: 11,
          ...(o.yTicks
            ? { values: o.yTicks }
            : log
              ? { format: "~e", values: decades([...ys, ...refs.map((r) => r.y)]) }
              : {}),
          ...(o.yFormat ? { format: o.yFormat } : {}),
        },
      },
      // Keep the caller's series order in the legend (not alphabetical: "10" would sort before "2").
      color: {
        field: "series",
        type: "nominal" as const,
        title: o.seriesTitle,
        sort: names,
        scale: { domain: names, scheme: names.length <= 10 ? "category10" : "tableau20" },
        legend: {
          titleFontSize: 13,
          labelFontSize: 12,
          symbolStrokeWidth: 3,
          ...(o.legendOrient === "bottom" ? { orient: "bottom" as const, columns: 1 } : {}),
          ...(o.legendLabelLimit ? { labelLimit: o.legendLabelLimit } : {}),
        },
      },
    },
  };
  const layers = [
    line,
    ...refs.flatMap((r) => [
      {
        data: { values: [{ y: r.y }] },
        mark: { type: "rule" as const, strokeDash: [6, 4], color: "#555" },
        encoding: { y: { field: "y", type: "quantitative" as const } },
      },
      ...(r.label
        ? [
            {
              data: { values: [{ y: r.y, label: r.label }] },
              mark: {
                type: "text" as const,
                align: "right" as const,
                baseline: "bottom" as const,
                dy: -3,
                fontSize: 11,
                color: "#333",
              },
              encoding: {
                y: { field: "y", type: "quantitative" as const },
                x: { value: o.width - 4 },
                text: { field: "label" },
              },
            },
          ]
        : []),
    ]),
  ];
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    width: o.width,
    height: o.height,
    background: "white",
    padding: 12,
    title: {
      text: o.title,
      ...(o.subtitle?.length ? { subtitle: o.subtitle, subtitleFontSize: 12 } : {}),
      anchor: "start",
      fontSize: 16,
    },
    data: { values },
    layer: layers,
    config: { font: `${CHART_FONT}, sans-serif`, view: { stroke: "#ccc" } },
  } as TopLevelSpec;
  return { spec, droppedPoints };
}

export async function svgOf(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function pngOf(svg: string, scale = 2): { png: Buffer; width: number; height: number } {
  const rendered = new Resvg(svg, { font: RESVG_FONTS, fitTo: { mode: "zoom", value: scale } }).render();
  return { png: rendered.asPng(), width: rendered.width, height: rendered.height };
}

export async function renderLineChart(input: LineChartInput): Promise<RenderedChart> {
  const { spec, droppedPoints } = lineChartSpec(input);
  const svg = await svgOf(spec);
  const { png, width, height } = pngOf(svg, input.pngScale ?? 2);
  return { svg, png, pngWidth: width, pngHeight: height, droppedPoints };
}

/** Write `<base>.svg` and `<base>.png`, each atomically; returns both paths. */
export async function writeChart(basePath: string, chart: RenderedChart): Promise<{ svg: string; png: string }> {
  const paths = { svg: `${basePath}.svg`, png: `${basePath}.png` };
  await writeFileAtomic(paths.svg, chart.svg);
  await writeFileAtomic(paths.png, chart.png);
  return paths;
}
