import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { opt, StylegramError } from "../errors.js";
import { writeFileAtomic } from "../fsutil/atomic.js";
import type { RgbImage } from "./image.js";
import { type Mask, maskFromImage } from "./masks.js";
import { type LoadOptions, MAX_INPUT_PIXELS } from "./size.js";

export type { LoadOptions };

/** What sharp decodes here (its libvips build has these loaders). */
const READABLE = "JPEG, PNG, WebP, TIFF, GIF, AVIF/HEIF or SVG";

/** Why a file system call on an input failed, in words, with the fix where there is one. */
function fileProblem(file: string, e: unknown): StylegramError {
  const code = (e as { code?: string }).code;
  const why =
    code === "ENOENT"
      ? `image ${file} does not exist`
      : code === "EACCES" || code === "EPERM"
        ? `cannot read image ${file}: permission denied (check the file's permissions, e.g. chmod +r)`
        : code === "EISDIR"
          ? `image ${file} is a folder, not an image file`
          : `cannot read image ${file}: ${(e as Error).message}`;
  return new StylegramError(why, { cause: e });
}

/**
 * Checks, without reading it, that an image file can be read: it exists, is a
 * regular file (a pipe or device would block the read forever), is not empty
 * and its permissions let us open it. Each failure names the real problem.
 */
export function assertImageFile(file: string): fs.Stats {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (e) {
    throw fileProblem(file, e);
  }
  if (stat.isDirectory()) throw new StylegramError(`image ${file} is a folder, not an image file`);
  if (!stat.isFile()) {
    throw new StylegramError(
      `image ${file} is not a regular file (a pipe, socket or device): save the image to a file and give that`,
    );
  }
  if (stat.size === 0) throw new StylegramError(`image ${file} is empty (0 bytes)`);
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    throw fileProblem(file, e);
  }
  return stat;
}

/** The bytes of an image file, or an error that names the real problem (see assertImageFile). */
function readImageFile(file: string): Buffer {
  assertImageFile(file);
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw fileProblem(file, e);
  }
}

/** sharp's own decoding errors, said in terms of the file and what to do. */
async function decodeProblem(file: string, bytes: Buffer, e: unknown): Promise<StylegramError> {
  const message = (e as Error).message;
  if (/unsupported image format/i.test(message)) {
    return new StylegramError(
      `cannot read image ${file}: it is not in a format stylegram reads (${READABLE}), or it is corrupt`,
      { cause: e },
    );
  }
  if (/pixel limit/i.test(message)) {
    const meta = await sharp(bytes, { limitInputPixels: false })
      .metadata()
      .catch(() => undefined);
    const size =
      meta?.width && meta.height
        ? `${meta.width}x${meta.height} (${((meta.width * meta.height) / 1e6).toFixed(0)} megapixels)`
        : "larger than";
    return new StylegramError(
      [
        `image ${file} is ${size}, over the ${(MAX_INPUT_PIXELS / 1e6).toFixed(0)} megapixels stylegram decodes: shrink it first (stylegram resizes every input to `,
        opt("size"),
        " anyway)",
      ],
      { cause: e },
    );
  }
  return new StylegramError(`cannot read image ${file}: ${message} (truncated or corrupt?)`, { cause: e });
}

export { MAX_INPUT_PIXELS };

/** Width and height of an image file as displayed (EXIF orientation applied), from its header only. */
export async function imageFileSize(file: string): Promise<{ width: number; height: number }> {
  const bytes = readImageFile(file);
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    if (!width || !height) throw new Error("no size in the header");
    return { width, height };
  } catch (e) {
    throw await decodeProblem(file, bytes, e);
  }
}

/**
 * Whether an image file has pixels that are not fully opaque (they are flattened onto white when
 * loaded, which the user should hear of): read from the header, and decoded only when it has alpha.
 */
export async function hasTransparency(file: string): Promise<boolean> {
  const bytes = readImageFile(file);
  try {
    const image = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS });
    if (!(await image.metadata()).hasAlpha) return false;
    return !(await image.stats()).isOpaque;
  } catch {
    // Unreadable files get their own clear error where they are loaded.
    return false;
  }
}

/**
 * Decodes an image file as 8-bit sRGB: EXIF orientation applied, alpha flattened
 * onto white, 16-bit and greyscale inputs converted.
 */
export async function loadImage(file: string, options: LoadOptions = {}): Promise<RgbImage> {
  const bytes = readImageFile(file);
  try {
    let pipeline = sharp(bytes, { failOn: "error", limitInputPixels: MAX_INPUT_PIXELS })
      .rotate()
      .flatten({ background: options.background ?? "#ffffff" })
      .toColourspace("srgb");
    if (options.exact !== undefined) {
      pipeline = pipeline.resize(options.exact.width, options.exact.height, {
        fit: "fill",
        kernel: "lanczos3",
      });
    } else if (options.longEdge !== undefined) {
      const meta = await sharp(bytes).rotate().metadata();
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
    throw await decodeProblem(file, bytes, e);
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
          : s.tiff({ compression: "lzw" }); // lossless, as TIFF users expect (sharp's default is JPEG)
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

/**
 * A mask from an image file (any format stylegram reads; colour is taken as its brightness) or an
 * image in memory. Transparent pixels count as black, outside the region: a mask painted on a
 * transparent layer means what it shows.
 */
export async function loadMask(src: string | RgbImage): Promise<Mask> {
  return maskFromImage(typeof src === "string" ? await loadImage(src, { background: "#000000" }) : src);
}
