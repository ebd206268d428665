import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { StylegramError } from "../errors.js";
import { writeFileAtomic } from "../fsutil/atomic.js";
import type { RgbImage } from "./image.js";

export interface LoadOptions {
  /** Resize so that the longer edge has this many pixels (high-quality Lanczos); omitted: keep the size. */
  longEdge?: number;
  /** Resize to exactly this size, ignoring the aspect ratio (for benchmarks and tests). */
  exact?: { width: number; height: number };
}

/**
 * Decodes an image file as 8-bit sRGB: EXIF orientation applied, alpha flattened
 * onto white, 16-bit and greyscale inputs converted.
 */
export async function loadImage(file: string, options: LoadOptions = {}): Promise<RgbImage> {
  if (!fs.existsSync(file)) throw new StylegramError(`image ${file} does not exist`);
  if (fs.statSync(file).isDirectory())
    throw new StylegramError(`image ${file} is a folder, not an image file`);
  try {
    let pipeline = sharp(file, { failOn: "error" })
      .rotate()
      .flatten({ background: "#ffffff" })
      .toColourspace("srgb");
    if (options.exact !== undefined) {
      pipeline = pipeline.resize(options.exact.width, options.exact.height, {
        fit: "fill",
        kernel: "lanczos3",
      });
    } else if (options.longEdge !== undefined) {
      const meta = await sharp(file).rotate().metadata();
      const w = meta.autoOrient?.width ?? meta.width ?? 0;
      const h = meta.autoOrient?.height ?? meta.height ?? 0;
      const scale = options.longEdge / Math.max(w, h);
      pipeline = pipeline.resize(Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale)), {
        fit: "fill",
        kernel: "lanczos3",
      });
    }
    const { data, info } = await pipeline
      .removeAlpha()
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels`);
    return {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    };
  } catch (e) {
    throw new StylegramError(`cannot read image ${file}: ${(e as Error).message}`, { cause: e });
  }
}

const FORMATS = {
  ".png": "png",
  ".jpg": "jpeg",
  ".jpeg": "jpeg",
  ".webp": "webp",
  ".tif": "tiff",
  ".tiff": "tiff",
} as const;

export type OutputFormat = (typeof FORMATS)[keyof typeof FORMATS];

/** The output format for a file name, from its extension; a clear error for one we cannot write. */
export function formatForPath(file: string): OutputFormat {
  const ext = path.extname(file).toLowerCase();
  const format = FORMATS[ext as keyof typeof FORMATS];
  if (!format) {
    throw new StylegramError(
      `cannot tell the image format of ${file}: use one of ${Object.keys(FORMATS).join(", ")}`,
      { exitCode: 2 },
    );
  }
  return format;
}

/** Encodes an image in the format its file name asks for. */
export async function encodeImage(img: RgbImage, format: OutputFormat): Promise<Uint8Array> {
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  const encoded =
    format === "png"
      ? s.png()
      : format === "jpeg"
        ? s.jpeg({ quality: 95, chromaSubsampling: "4:4:4" })
        : format === "webp"
          ? s.webp({ quality: 95 })
          : s.tiff();
  return new Uint8Array(await encoded.toBuffer());
}

/** Writes an image atomically (temporary file, then rename), in the format of its extension. */
export async function saveImage(file: string, img: RgbImage): Promise<void> {
  writeFileAtomic(file, await encodeImage(img, formatForPath(file)));
}

/** Resizes an in-memory image to exactly width x height (Lanczos). */
export async function resizeImage(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: "fill", kernel: "lanczos3" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
  };
}
