import fs from "node:fs";
import sharp from "sharp";
import { StylegramError } from "../errors.js";
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
