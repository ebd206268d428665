import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { FastifyRequest } from "fastify";
import sharp, { type Metadata } from "sharp";
import { HttpError } from "./http-error.js";

export interface UploadLimits {
  /** Bytes of one file. */
  fileBytes: number;
  /** Pixels of one image, read from its header before anything is decoded. */
  pixels: number;
  /** Style images in one job. */
  styles: number;
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = {
  fileBytes: 25 * 2 ** 20,
  pixels: 60e6,
  styles: 8,
};

/**
 * The formats a job may upload, as sharp's metadata names them from the bytes.
 * SVG is left out on purpose: it is a program for a renderer, not a picture.
 */
const FORMATS: Record<string, string> = {
  jpeg: "jpg",
  png: "png",
  webp: "webp",
  gif: "gif",
  tiff: "tif",
  heif: "avif",
};
const FORMAT_WORDS = "JPEG, PNG, WebP, GIF, TIFF or AVIF";

export interface Upload {
  /** The name the client gave, for display and the equivalent command only: never a path here. */
  name: string;
  /** Where the server keeps it: a name of the server's own choosing in the job's folder. */
  file: string;
  width: number;
  height: number;
}

export interface JobUpload {
  content: Upload;
  styles: Upload[];
  /** The `options` field, unparsed. */
  options: string | undefined;
}

/**
 * A client's file name made harmless for display, the command line and a
 * download's name: the last path component, printable characters only, short.
 */
export function displayName(raw: string | undefined, fallback: string): string {
  const base = (raw ?? "").split(/[\\/]/).pop() ?? "";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  const clean = base.replace(/[\u0000-\u001f\u007f"`$\\]/g, "").trim();
  const short = clean.length > 80 ? `${clean.slice(0, 60)}...${clean.slice(-17)}` : clean;
  return short === "" || short === "." || short === ".." ? fallback : short;
}

/** Format and size of a stored upload, from its header; a 4xx naming the field for anything else. */
async function inspect(file: string, field: string, shown: string, limits: UploadLimits) {
  const bytes = fs.statSync(file).size;
  if (bytes === 0) throw new HttpError(400, `${field}: ${shown} is empty (0 bytes)`, field);
  let meta: Metadata;
  try {
    // Only the header is read: a decompression bomb is measured, not decoded.
    meta = await sharp(file, { limitInputPixels: false }).metadata();
  } catch {
    throw new HttpError(
      415,
      `${field}: ${shown} is not an image stylegram reads (${FORMAT_WORDS}), or it is corrupt`,
      field,
    );
  }
  const ext = meta.format === undefined ? undefined : FORMATS[meta.format];
  if (ext === undefined || (meta.format === "heif" && meta.compression !== "av1")) {
    throw new HttpError(
      415,
      `${field}: ${shown} is ${meta.format?.toUpperCase() ?? "an unknown format"}; send ${FORMAT_WORDS}`,
      field,
    );
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new HttpError(415, `${field}: ${shown} has no size in its header`, field);
  if (width * height > limits.pixels) {
    throw new HttpError(
      413,
      `${field}: ${shown} is ${width}x${height} (${((width * height) / 1e6).toFixed(0)} megapixels), over the ` +
        `${(limits.pixels / 1e6).toFixed(0)} megapixels this server decodes: shrink it first (it is resized to the output size anyway)`,
      field,
    );
  }
  return { width, height, ext };
}

/**
 * Reads a job's multipart request: the files are streamed into `dir` under
 * names the server chooses (content, style-1, ...), each capped at the byte
 * limit, then identified from their bytes and measured from their headers.
 * Throws an HttpError naming the field for anything wrong; the caller removes `dir`.
 */
export async function readJobUpload(
  request: FastifyRequest,
  dir: string,
  limits: UploadLimits,
): Promise<JobUpload> {
  if (!request.isMultipart()) {
    throw new HttpError(
      415,
      "POST /api/jobs takes multipart/form-data: a file field content (the photo), one or more file fields style, and an optional field options (JSON)",
    );
  }
  const megabytes = `${Math.round(limits.fileBytes / 2 ** 20)} MB`;
  let content: { raw: string | undefined; file: string } | undefined;
  const styles: { raw: string | undefined; file: string }[] = [];
  let options: string | undefined;
  const parts = request.parts({
    limits: {
      fileSize: limits.fileBytes,
      files: 1 + limits.styles,
      // Room for a stray field or two, so that it is named (400) rather than counted (413).
      fields: 4,
      fieldSize: 64 * 1024,
      parts: 5 + limits.styles,
    },
  });
  for await (const part of parts) {
    const field = part.fieldname;
    if (part.type === "field") {
      if (field !== "options") {
        throw new HttpError(
          400,
          `unknown field "${field}": the fields are content, style and options`,
          field,
        );
      }
      if (part.valueTruncated) throw new HttpError(413, "options is over 64 KB", "options");
      options = String(part.value);
      continue;
    }
    if (field !== "content" && field !== "style") {
      part.file.resume();
      throw new HttpError(
        400,
        `unknown file field "${field}": send the photo as content and each style image as style`,
        field,
      );
    }
    if (field === "content" && content !== undefined) {
      part.file.resume();
      throw new HttpError(400, "content: send one photo (one content file)", "content");
    }
    const file = path.join(dir, field === "content" ? "content" : `style-${styles.length + 1}`);
    await pipeline(part.file, fs.createWriteStream(file, { flags: "wx", mode: 0o600 }));
    if (part.file.truncated) {
      throw new HttpError(
        413,
        `${field}: ${displayName(part.filename, "the file")} is over the ${megabytes} limit of one file: send a smaller image`,
        field,
      );
    }
    const entry = { raw: part.filename, file };
    if (field === "content") content = entry;
    else styles.push(entry);
  }
  if (content === undefined) {
    throw new HttpError(400, "content is missing: send the photo as a file field named content", "content");
  }
  if (styles.length === 0) {
    throw new HttpError(
      400,
      "style is missing: send at least one style image as a file field named style",
      "style",
    );
  }
  const measure = async (e: { raw: string | undefined; file: string }, field: string, fallback: string) => {
    const given = displayName(e.raw, "");
    const { width, height, ext } = await inspect(e.file, field, given || fallback, limits);
    return { name: given || `${fallback}.${ext}`, file: e.file, width, height };
  };
  return {
    content: await measure(content, "content", "photo"),
    styles: await Promise.all(styles.map((s, i) => measure(s, "style", `style-${i + 1}`))),
    options,
  };
}

/** A library message with the server's private file paths replaced by the names the client gave. */
export function withUploadNames(message: string, uploads: readonly Upload[]): string {
  let text = message;
  for (const u of uploads) text = text.replaceAll(u.file, u.name);
  return text;
}
