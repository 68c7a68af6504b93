import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { basename } from "node:path";

/**
 * IDX files (the MNIST container): big-endian magic 0x0000 0x08 <ndims>, then ndims uint32 sizes, then uint8 data.
 * Only the unsigned-byte type (0x08) is accepted — it is the only one MNIST uses.
 */
export const IDX_MAGIC = { images: 0x00000803, labels: 0x00000801 } as const;

export class MnistFileError extends Error {
  override name = "MnistFileError";
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

export interface IdxArray {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

const hex = (v: number) => `0x${v.toString(16).padStart(8, "0")}`;

/** Parse an (already decompressed) IDX buffer, checking magic, header length and data length. */
export function parseIdx(buf: Uint8Array, expectedMagic: number, file: string): IdxArray {
  if (buf.length < 4)
    throw new MnistFileError(file, `truncated: ${buf.length} bytes, too short for the IDX magic number`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== expectedMagic) {
    throw new MnistFileError(
      file,
      `bad magic number ${hex(magic)} (expected ${hex(expectedMagic)}: ${expectedMagic === IDX_MAGIC.images ? "images, ubyte, 3 dims" : "labels, ubyte, 1 dim"})`,
    );
  }
  const ndims = magic & 0xff;
  const headerBytes = 4 + 4 * ndims;
  if (buf.length < headerBytes)
    throw new MnistFileError(file, `truncated: ${buf.length} bytes, header needs ${headerBytes}`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = buf.length - headerBytes;
  if (actual < expected)
    throw new MnistFileError(
      file,
      `truncated: header says ${dims.join("×")} = ${expected} bytes of data, file has ${actual}`,
    );
  if (actual > expected)
    throw new MnistFileError(file, `${actual - expected} unexpected trailing bytes after ${dims.join("×")} data`);
  return { dims, data: buf.subarray(headerBytes) };
}

/** gunzip with the file named in the error (a truncated .gz fails here, before IDX parsing). */
export function gunzipFile(gz: Uint8Array, file: string): Uint8Array {
  try {
    return gunzipSync(gz);
  } catch (err) {
    throw new MnistFileError(
      file,
      `cannot decompress (${(err as Error).message}); the .gz file is truncated or corrupt`,
    );
  }
}

export interface MnistSplit {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  /** count × 28 × 28 raw pixels 0..255. */
  readonly images: Uint8Array;
  /** count labels 0..9. */
  readonly labels: Uint8Array;
}

/** Validate an images + labels pair already decompressed. */
export function parseMnistPair(
  images: Uint8Array,
  labels: Uint8Array,
  imagesFile: string,
  labelsFile: string,
): MnistSplit {
  const img = parseIdx(images, IDX_MAGIC.images, imagesFile);
  const lab = parseIdx(labels, IDX_MAGIC.labels, labelsFile);
  const [count, rows, cols] = img.dims as [number, number, number];
  if (rows !== 28 || cols !== 28) throw new MnistFileError(imagesFile, `images are ${rows}×${cols}, expected 28×28`);
  if (lab.dims[0] !== count) {
    throw new MnistFileError(
      labelsFile,
      `count mismatch: ${lab.dims[0]} labels but ${basename(imagesFile)} has ${count} images`,
    );
  }
  for (let i = 0; i < lab.data.length; i++) {
    if (lab.data[i]! > 9) throw new MnistFileError(labelsFile, `label ${i} is ${lab.data[i]} (expected 0..9)`);
  }
  return { count, rows, cols, images: img.data, labels: lab.data };
}

/** Read a gzipped images/labels pair from disk. */
export async function readMnistPair(imagesPath: string, labelsPath: string): Promise<MnistSplit> {
  const [gi, gl] = await Promise.all([readFile(imagesPath), readFile(labelsPath)]);
  return parseMnistPair(gunzipFile(gi, imagesPath), gunzipFile(gl, labelsPath), imagesPath, labelsPath);
}
