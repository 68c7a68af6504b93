import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Resvg } from "@resvg/resvg-js";
import {
  PNG_SIGNATURE,
  RESVG_FONTS,
  lineChartSpec,
  pngSize,
  renderLineChart,
  svgSize,
  writeChart,
} from "../src/plot/index.ts";

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe("line chart", () => {
  const decay = (k: number) => Array.from({ length: 40 }, (_, i) => ({ x: i, y: Math.exp(-i / k) }));

  it("renders an SVG with title, axis titles and legend, and a PNG of the SVG's size times the scale", async () => {
    const chart = await renderLineChart({
      title: "Decay curves",
      xTitle: "epoch",
      yTitle: "loss value",
      seriesTitle: "rate",
      series: [
        { name: "slow", points: decay(20) },
        { name: "fast", points: decay(5) },
      ],
      pngScale: 2,
    });
    for (const text of ["Decay curves", "epoch", "loss value", "rate", "slow", "fast"])
      expect(chart.svg).toContain(text);
    expect(chart.png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    const svg = svgSize(chart.svg),
      png = pngSize(chart.png);
    expect(png).toEqual({ width: svg.width * 2, height: svg.height * 2 });
    expect({ width: chart.pngWidth, height: chart.pngHeight }).toEqual(png);
    expect(chart.droppedPoints).toBe(0);
  });

  it("draws text in the PNG (resvg found a font): the title band has dark pixels only when there is a title", async () => {
    const base = { xTitle: "x", yTitle: "y", series: [{ name: "s", points: decay(5) }] };
    const withTitle = await renderLineChart({ ...base, title: "WWWWWWWWWWWWWWWWWWWW" });
    const blank = await renderLineChart({ ...base, title: " " });
    // Rasterise again at scale 1 to read pixels; the title sits in the top band above the plot.
    const darkPixelsOnTop = (svg: string) => {
      const img = new Resvg(svg, { font: RESVG_FONTS }).render();
      const pixels = img.pixels; // a getter that copies the whole image: read it once
      let dark = 0;
      for (let i = 0; i < img.width * 30 * 4; i += 4) if (pixels[i]! < 128) dark++;
      return dark;
    };
    expect(darkPixelsOnTop(blank.svg)).toBe(0);
    expect(darkPixelsOnTop(withTitle.svg)).toBeGreaterThan(200);
  });

  it("keeps the caller's series order in the legend and drops points a log axis cannot show", () => {
    const { spec, droppedPoints } = lineChartSpec({
      title: "t",
      xTitle: "x",
      yTitle: "y",
      yScale: "log",
      series: [
        {
          name: "10",
          points: [
            { x: 0, y: 1 },
            { x: 1, y: 0 },
            { x: 2, y: Number.NaN },
          ],
        },
        {
          name: "2",
          points: [
            { x: 0, y: 1 },
            { x: 1, y: Number.POSITIVE_INFINITY },
            { x: 2, y: -1 },
          ],
        },
      ],
    });
    expect(droppedPoints).toBe(4);
    const json = JSON.stringify(spec);
    expect(json).toContain('"domain":["10","2"]');
    expect(json).toContain('"type":"log"');
  });

  it("rejects duplicate series names and invalid options with a named field", async () => {
    await expect(
      renderLineChart({
        title: "t",
        xTitle: "x",
        yTitle: "y",
        series: [
          { name: "a", points: [] },
          { name: "a", points: [] },
        ],
      }),
    ).rejects.toThrow(/unique/);
    await expect(renderLineChart({ title: "t", xTitle: "x", yTitle: "y", series: [] })).rejects.toThrow(
      /field "series"/,
    );
  });

  it("image-size helpers reject what is not a PNG/SVG", () => {
    expect(() => pngSize(Buffer.from("GIF89a-not-a-png-at-all-really"))).toThrow(/not a PNG/);
    expect(() => svgSize("<svg></svg>")).toThrow(/not an SVG/);
  });

  it("writes <base>.svg and <base>.png with no temp files left", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nnspec-plot-"));
    dirs.push(dir);
    const chart = await renderLineChart({
      title: "t",
      xTitle: "x",
      yTitle: "y",
      series: [{ name: "a", points: decay(3) }],
    });
    const paths = await writeChart(join(dir, "nested", "chart"), chart);
    expect(await readdir(join(dir, "nested"))).toEqual(["chart.png", "chart.svg"]);
    expect(await readFile(paths.svg, "utf8")).toBe(chart.svg);
    expect((await readFile(paths.png)).equals(chart.png)).toBe(true);
  });
});
