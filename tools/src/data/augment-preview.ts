import type { Augmentation } from "@nnspec/spec";
import { grayPng } from "../plot/gray-png.ts";
import { CHART_FONT, pngOf } from "../plot/line-chart.ts";
import { augmentParams, warpImage, type AugmentParams } from "./augment.ts";
import type { MnistSplit } from "./idx.ts";

export interface AugmentPreviewOptions {
  readonly split: MnistSplit;
  readonly augmentation: Augmentation;
  readonly seed: number;
  /** 0-based epoch whose draws are shown. */
  readonly epoch: number;
  /** Training-set indices of the digits shown (default the first 16). */
  readonly images?: readonly number[];
  /** Pixels per MNIST pixel in the figure (nearest neighbour, done here so no viewer smooths it). */
  readonly zoom?: number;
}

const SIDE = 28;
const signed = (v: number, digits: number) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(digits)}`;

export function describeAugmentation(a: Augmentation): string {
  if (a.kind === "none") return "none";
  if (a.kind === "rotate") return `rotate ±${a.maxDegrees}°`;
  return `affine: rotate ±${a.maxDegrees}°, shift ±${a.maxShift} px${a.maxScale > 0 ? `, scale 1 ± ${a.maxScale}` : ""}`;
}

function caption(p: AugmentParams, kind: Augmentation["kind"]): string {
  if (kind === "rotate") return `${signed(p.degrees, 1)}°`;
  const scale = p.scale !== 1 ? `, ×${p.scale.toFixed(2)}` : "";
  return `${signed(p.degrees, 1)}°, (${signed(p.dx, 1)}, ${signed(p.dy, 1)}) px${scale}`;
}

function zoomed(pixels: ArrayLike<number>, zoom: number): Buffer {
  const side = SIDE * zoom;
  const out = new Uint8Array(side * side);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++)
      out[y * side + x] = Math.round(pixels[Math.floor(y / zoom) * SIDE + Math.floor(x / zoom)]!);
  return grayPng(out, side, side);
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * 16 training digits as original | augmented pairs (4 × 4), each captioned with its drawn transform: the figure
 * `nnspec augment-preview` writes. Pixels are the warp's output before normalisation, rounded to 0..255 for display.
 */
export function augmentPreview(o: AugmentPreviewOptions): { svg: string; png: Buffer; width: number; height: number } {
  const images = o.images ?? Array.from({ length: 16 }, (_, i) => i);
  const zoom = o.zoom ?? 3;
  const cell = SIDE * zoom;
  const gap = 6,
    colGap = 28,
    rowGap = 16,
    captionH = 18,
    margin = 16,
    titleH = 54;
  const cols = 4;
  const rows = Math.ceil(images.length / cols);
  const pairW = 2 * cell + gap;
  const width = 2 * margin + cols * pairW + (cols - 1) * colGap;
  const height = titleH + margin + rows * (cell + captionH + rowGap);
  const parts: string[] = [];
  const warped = new Float64Array(SIDE * SIDE);
  images.forEach((image, i) => {
    if (image < 0 || image >= o.split.count)
      throw new Error(`augment preview: image ${image} is outside the ${o.split.count} training images`);
    const p = augmentParams(o.augmentation, o.seed, o.epoch, image);
    const original = o.split.images.subarray(image * SIDE * SIDE, (image + 1) * SIDE * SIDE);
    warpImage(original, p, warped);
    const x = margin + (i % cols) * (pairW + colGap);
    const y = titleH + Math.floor(i / cols) * (cell + captionH + rowGap);
    const href = (px: ArrayLike<number>) => `data:image/png;base64,${zoomed(px, zoom).toString("base64")}`;
    parts.push(
      `<image x="${x}" y="${y}" width="${cell}" height="${cell}" href="${href(original)}"/>`,
      `<image x="${x + cell + gap}" y="${y}" width="${cell}" height="${cell}" href="${href(warped)}"/>`,
      `<text x="${x}" y="${y + cell + 13}" font-size="11" fill="#333">#${image} · ${esc(caption(p, o.augmentation.kind))}</text>`,
    );
  });
  const title = `Augmentation ${describeAugmentation(o.augmentation)}`;
  const subtitle = `seed ${o.seed}, epoch ${o.epoch + 1}: left original, right augmented (bilinear, black outside), before normalisation`;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${CHART_FONT}, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${margin}" y="24" font-size="16" fill="#000">${esc(title)}</text>`,
    `<text x="${margin}" y="42" font-size="12" fill="#444">${esc(subtitle)}</text>`,
    ...parts,
    "</svg>",
  ].join("\n");
  const { png, width: pw, height: ph } = pngOf(svg, 1);
  return { svg, png, width: pw, height: ph };
}
