import type { TopLevelSpec } from "vega-lite";
import { z } from "zod";
import { parseWith } from "@nnspec/spec";
import { CHART_FONT, pngOf, svgOf, type RenderedChart } from "./line-chart.ts";

/**
 * A horizontal bar chart, optionally grouped (several series per category, side by side) with min–max whiskers
 * and dashed reference lines: the bench's speed and accuracy charts. Same pipeline as the line chart:
 * Vega-Lite → SVG (no canvas) → PNG with resvg.
 */
const barSchema = z.object({
  category: z.string().min(1),
  series: z.string().min(1).default("value"),
  value: z.number().finite(),
  /** Whisker (e.g. min–max of repetitions); both or neither. */
  lo: z.number().finite().optional(),
  hi: z.number().finite().optional(),
  /** Text at the end of the bar; default the value. */
  label: z.string().optional(),
});
export const barChartSchema = z.object({
  title: z.string(),
  subtitle: z.union([z.string(), z.array(z.string())]).optional(),
  valueTitle: z.string(),
  scale: z.enum(["linear", "log"]).default("linear"),
  seriesTitle: z.string().default("series"),
  bars: z.array(barSchema).min(1),
  width: z.number().int().positive().default(560),
  /** Height of one bar (the chart grows with the number of bars). */
  barHeight: z.number().int().positive().default(18),
  referenceLines: z.array(z.object({ value: z.number().finite(), label: z.string().optional() })).default([]),
  pngScale: z.number().positive().default(2),
});
export type BarChartInput = z.input<typeof barChartSchema>;

export function barChartSpec(input: BarChartInput): TopLevelSpec {
  const o = parseWith(barChartSchema, input, "bar chart options");
  const log = o.scale === "log";
  const bars = o.bars.filter((b) => !log || b.value > 0);
  const categories = [...new Set(o.bars.map((b) => b.category))];
  const series = [...new Set(o.bars.map((b) => b.series))];
  const grouped = series.length > 1;
  const values = bars.map((b) => ({ ...b, text: b.label ?? String(Number(b.value.toPrecision(3))) }));
  const lows = bars.flatMap((b) => [b.value, ...(b.lo !== undefined && b.lo > 0 ? [b.lo] : [])]);
  const logBase = lows.length ? 10 ** Math.floor(Math.log10(Math.min(...lows))) : 1;
  const y = {
    field: "category",
    type: "nominal" as const,
    sort: categories,
    title: null,
    axis: { labelFontSize: 12, labelLimit: 220 },
  };
  const yOffset = grouped ? { yOffset: { field: "series", type: "nominal" as const, sort: series } } : {};
  const x = {
    field: "value",
    type: "quantitative" as const,
    title: o.valueTitle,
    scale: log ? { type: "log" as const } : { zero: true },
    axis: { titleFontSize: 13, labelFontSize: 11, ...(log ? { format: "~e" } : {}) },
  };
  const color = grouped
    ? {
        color: {
          field: "series",
          type: "nominal" as const,
          title: o.seriesTitle,
          sort: series,
          scale: { domain: series, scheme: "category10" },
          legend: { titleFontSize: 13, labelFontSize: 12, labelLimit: 260 },
        },
      }
    : { color: { value: "#4c78a8" } };
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    width: o.width,
    height: { step: o.barHeight } as unknown as number,
    background: "white",
    padding: 12,
    title: {
      text: o.title,
      ...(o.subtitle?.length ? { subtitle: o.subtitle, subtitleFontSize: 12 } : {}),
      anchor: "start",
      fontSize: 16,
    },
    data: { values },
    layer: [
      // A log axis has no zero: bars start at the decade below the smallest value (and whisker) instead.
      {
        mark: { type: "bar", clip: true },
        encoding: { y, x, ...(log ? { x2: { datum: logBase } } : {}), ...yOffset, ...color },
      },
      {
        transform: [{ filter: "isValid(datum.lo) && isValid(datum.hi)" }],
        mark: { type: "rule", color: "#222", clip: true },
        encoding: { y, ...yOffset, x: { field: "lo", type: "quantitative" }, x2: { field: "hi" } },
      },
      {
        mark: { type: "text", align: "left", dx: 4, fontSize: 10, color: "#333" },
        encoding: { y, ...yOffset, x: { field: "value", type: "quantitative" }, text: { field: "text" } },
      },
      ...o.referenceLines
        .filter((r) => !log || r.value > 0)
        .flatMap((r) => [
          {
            data: { values: [{ value: r.value }] },
            mark: { type: "rule", strokeDash: [6, 4], color: "#c00" },
            encoding: { x: { field: "value", type: "quantitative" } },
          },
          ...(r.label
            ? [
                {
                  data: { values: [{ value: r.value, label: r.label }] },
                  mark: { type: "text", align: "right", baseline: "top", dx: -3, y: 0, fontSize: 11, color: "#c00" },
                  encoding: { x: { field: "value", type: "quantitative" }, text: { field: "label" } },
                },
              ]
            : []),
        ]),
    ],
    config: { font: `${CHART_FONT}, sans-serif`, view: { stroke: "#ccc" } },
  };
  return spec as unknown as TopLevelSpec;
}

export async function renderBarChart(input: BarChartInput): Promise<RenderedChart> {
  const svg = await svgOf(barChartSpec(input));
  const { png, width, height } = pngOf(svg, input.pngScale ?? 2);
  return {
    svg,
    png,
    pngWidth: width,
    pngHeight: height,
    droppedPoints: input.scale === "log" ? input.bars.filter((b) => !(b.value > 0)).length : 0,
  };
}
