import fs from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
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
  /** Bytes of all the files of one request together. */
  requestBytes: number;
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = {
  fileBytes: 25 * 2 ** 20,
  pixels: 60e6,
  styles: 8,
  requestBytes: 64 * 2 ** 20,
};

const megabytes = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;

/** The refusal of a request whose files together are over the limit. */
export function tooManyBytes(limits: UploadLimits): HttpError {
  return new HttpError(
    413,
    `the files are over the ${megabytes(limits.requestBytes)} limit of one request together: send smaller images, or fewer`,
  );
}

/** Passes bytes through, and fails once the request's files together pass `limit`. */
function byteCounter(counted: { bytes: number }, limits: UploadLimits): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      counted.bytes += chunk.length;
      done(counted.bytes > limits.requestBytes ? tooManyBytes(limits) : null, chunk);
    },
  });
}

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
 * download's name: the last path component, short, without control and
 * format characters (a right-to-left override would show "gpj.exe" as
 * "exe.jpg"), line separators or shell-quoting characters.
 */
export function displayName(raw: string | undefined, fallback: string): string {
  const base = (raw ?? "").split(/[\\/]/).pop() ?? "";
  const clean = base.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}"`$\\]/gu, "").trim();
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
 * limit and all together at the request's, and each is identified from its
 * bytes and measured from its header as soon as it has arrived, so that a
 * wrong file stops the request before the rest is received.
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
  try {
    return await readParts(request, dir, limits);
  } catch (e) {
    throw malformed(e) ?? e;
  }
}

/**
 * busboy's own errors (no boundary, a body that ends before its last
 * boundary, a broken part header) as a 400; any other error as it was.
 */
function malformed(e: unknown): HttpError | undefined {
  if (!(e instanceof Error) || e instanceof HttpError) return undefined;
  // Fastify's and the plugin's errors have a code (the error handler words them), the file system's a syscall.
  if ("code" in e || "syscall" in e || "statusCode" in e) return undefined;
  return new HttpError(
    400,
    `the request is not well-formed multipart/form-data (${e.message}): send it as a browser's FormData does`,
  );
}

async function readParts(request: FastifyRequest, dir: string, limits: UploadLimits): Promise<JobUpload> {
  let content: Upload | undefined;
  const styles: Upload[] = [];
  const counted = { bytes: 0 };
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
    await pipeline(
      part.file,
      byteCounter(counted, limits),
      fs.createWriteStream(file, { flags: "wx", mode: 0o600 }),
    );
    if (part.file.truncated) {
      throw new HttpError(
        413,
        `${field}: ${displayName(part.filename, "the file")} is over the ${megabytes(limits.fileBytes)} limit of one file: send a smaller image`,
        field,
      );
    }
    const given = displayName(part.filename, "");
    const fallback = field === "content" ? "photo" : `style-${styles.length + 1}`;
    const { width, height, ext } = await inspect(file, field, given || fallback, limits);
    const upload = { name: given || `${fallback}.${ext}`, file, width, height };
    if (field === "content") content = upload;
    else styles.push(upload);
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
  return { content, styles, options };
}

/** A library message with the server's private file paths replaced by the names the client gave. */
export function withUploadNames(message: string, uploads: readonly Upload[]): string {
  let text = message;
  for (const u of uploads) text = text.replaceAll(u.file, u.name);
  return text;
}
