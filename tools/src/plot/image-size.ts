/** Image sizes read from file headers, to check written charts without decoding them. */

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height from a PNG's IHDR chunk (bytes 16–23, big-endian); throws if it is not a PNG. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (
    buf.length < 24 ||
    !buf.subarray(0, 8).equals(PNG_SIGNATURE) ||
    buf.subarray(12, 16).toString("latin1") !== "IHDR"
  )
    throw new Error("not a PNG (bad signature or no IHDR chunk)");
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

/** width/height attributes of the root <svg> element. */
export function svgSize(svg: string): { width: number; height: number } {
  const tag = /<svg\b[^>]*>/.exec(svg)?.[0];
  const width = tag && /\swidth="([\d.]+)"/.exec(tag)?.[1];
  const height = tag && /\sheight="([\d.]+)"/.exec(tag)?.[1];
  if (!width || !height) throw new Error("not an SVG with width and height");
  return { width: Number(width), height: Number(height) };
}
