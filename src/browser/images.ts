import { StylegramError } from "../errors.js";
import type { RgbImage } from "../image/image.js";
import { type Mask, maskFromImage } from "../image/masks.js";
import { fitLongEdge, type LoadOptions, MAX_INPUT_PIXELS, type Size } from "../image/size.js";

/**
 * Images in a browser (here, in the Web Worker): decoded by the browser itself (createImageBitmap,
 * OffscreenCanvas), which works in a worker and reads what the browser reads. Resizing is the
 * browser's high-quality resampling, not sharp's Lanczos: pictures differ from Node's by a little.
 */

/** What the browser API takes as an image: a URL, a file or blob, a decoded bitmap or pixels. */
export type BrowserImage = string | URL | Blob | ImageBitmap | ImageData | RgbImage;

/** An image as it crosses to the worker: a URL (absolute), or one the worker can decode or read. */
export type WireImage = string | Blob | ImageBitmap | ImageData | RgbImage;

/** Decoded pixels, RGBA as the browser gives them, before transparency is flattened. */
interface Rgba {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

const READABLE = "JPEG, PNG, WebP, GIF or AVIF";

function canvas2d(width: number, height: number): OffscreenCanvasRenderingContext2D {
  const ctx = new OffscreenCanvas(width, height).getContext("2d", { willReadFrequently: true });
  if (!ctx) throw new StylegramError("this browser gives no 2D canvas in a worker (OffscreenCanvas)");
  return ctx;
}

function pixelsOf(bitmap: ImageBitmap): Rgba {
  const ctx = canvas2d(bitmap.width, bitmap.height);
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return { width: bitmap.width, height: bitmap.height, data };
}

async function decode(blob: Blob, name: string): Promise<Rgba> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { premultiplyAlpha: "none", imageOrientation: "from-image" });
  } catch (e) {
    throw new StylegramError(
      `cannot read image ${name}: it is not in a format this browser decodes (${READABLE}), or it is corrupt`,
      { cause: e },
    );
  }
  try {
    if (bitmap.width * bitmap.height > MAX_INPUT_PIXELS) {
      throw new StylegramError(
        `image ${name} is ${bitmap.width}x${bitmap.height}, over the ${(MAX_INPUT_PIXELS / 1e6).toFixed(0)} megapixels stylegram decodes: shrink it first (every input is resized to the size anyway)`,
      );
    }
    return pixelsOf(bitmap);
  } finally {
    bitmap.close();
  }
}

/** Pixels flattened onto a background (white for pictures, black for masks), as sharp's flatten does. */
function flatten(img: Rgba, background: number): RgbImage {
  const plane = img.width * img.height;
  const data = new Uint8Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    const a = img.data[4 * p + 3] as number;
    for (let c = 0; c < 3; c++) {
      const v = img.data[4 * p + c] as number;
      data[3 * p + c] = a === 255 ? v : Math.round((v * a + background * (255 - a)) / 255);
    }
  }
  return { width: img.width, height: img.height, data };
}

/** An RGB image resized by the browser's high-quality resampling. */
export async function resizeRgb(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const rgba = new Uint8ClampedArray(4 * img.width * img.height);
  for (let p = 0; p < img.width * img.height; p++) {
    rgba[4 * p] = img.data[3 * p] as number;
    rgba[4 * p + 1] = img.data[3 * p + 1] as number;
    rgba[4 * p + 2] = img.data[3 * p + 2] as number;
    rgba[4 * p + 3] = 255;
  }
  const bitmap = await createImageBitmap(new ImageData(rgba, img.width, img.height), {
    resizeWidth: width,
    resizeHeight: height,
    resizeQuality: "high",
  });
  try {
    return flatten(pixelsOf(bitmap), 255);
  } finally {
    bitmap.close();
  }
}

/** RGB pixels as ImageData, what a canvas draws (and what the browser API returns). */
export function toImageData(img: RgbImage): ImageData {
  const plane = img.width * img.height;
  const rgba = new Uint8ClampedArray(4 * plane);
  for (let p = 0; p < plane; p++) {
    rgba[4 * p] = img.data[3 * p] as number;
    rgba[4 * p + 1] = img.data[3 * p + 1] as number;
    rgba[4 * p + 2] = img.data[3 * p + 2] as number;
    rgba[4 * p + 3] = 255;
  }
  return new ImageData(rgba, img.width, img.height);
}

/**
 * The images of one call, by the names the run knows them by: URLs are fetched and decoded once
 * however many times the run reads them (its checks, each scale); blobs, bitmaps and pixels given in
 * memory are registered under a readable name ("photo.jpg", "ImageData 2"), which messages show.
 */
export class ImageStore {
  private readonly decoded = new Map<string, Promise<Rgba>>();
  private count = 0;

  constructor(private readonly signal?: AbortSignal) {}

  /** The name a run passes around for an image given to the API (an RgbImage stays as it is). */
  add(image: WireImage): string | RgbImage {
    if (typeof image === "string") return image;
    if (isRgbImage(image)) return image;
    this.count++;
    const name =
      image instanceof Blob
        ? (image as File).name
          ? `${(image as File).name}`
          : `Blob ${this.count}`
        : image instanceof ImageData
          ? `ImageData ${this.count}`
          : `ImageBitmap ${this.count}`;
    const key = this.decoded.has(name) ? `${name} (${this.count})` : name;
    this.decoded.set(
      key,
      image instanceof Blob
        ? decode(image, key)
        : image instanceof ImageData
          ? Promise.resolve({ width: image.width, height: image.height, data: image.data })
          : Promise.resolve(pixelsOf(image)),
    );
    return key;
  }

  private rgba(src: string): Promise<Rgba> {
    let p = this.decoded.get(src);
    if (!p) {
      p = this.fetchImage(src);
      this.decoded.set(src, p);
    }
    return p;
  }

  private async fetchImage(url: string): Promise<Rgba> {
    let response: Response;
    try {
      response = await fetch(url, this.signal ? { signal: this.signal } : {});
    } catch (e) {
      throw new StylegramError(
        `cannot fetch image ${url}: ${(e as Error).message} (is the address right, and does its server allow this page to read it (CORS)?)`,
        { cause: e },
      );
    }
    if (!response.ok)
      throw new StylegramError(`cannot fetch image ${url}: the server answered ${response.status}`);
    return decode(await response.blob(), url);
  }

  async load(src: string | RgbImage, options: LoadOptions = {}): Promise<RgbImage> {
    const img =
      typeof src === "string"
        ? flatten(await this.rgba(src), options.background === "#000000" ? 0 : 255)
        : src;
    if (options.exact) return resizeRgb(img, options.exact.width, options.exact.height);
    if (options.longEdge !== undefined) {
      const { width, height } = fitLongEdge(img, options.longEdge);
      return resizeRgb(img, width, height);
    }
    return img;
  }

  async size(src: string | RgbImage): Promise<Size> {
    if (typeof src !== "string") return { width: src.width, height: src.height };
    const { width, height } = await this.rgba(src);
    return { width, height };
  }

  async hasTransparency(src: string | RgbImage): Promise<boolean> {
    if (typeof src !== "string") return false;
    const { data } = await this.rgba(src);
    for (let i = 3; i < data.length; i += 4) if ((data[i] as number) < 255) return true;
    return false;
  }

  /** A mask: brightness, transparent pixels counting as black (as Node's loadMask). */
  async mask(src: string | RgbImage): Promise<Mask> {
    return maskFromImage(await this.load(src, { background: "#000000" }));
  }
}

function isRgbImage(v: unknown): v is RgbImage {
  return typeof v === "object" && v !== null && (v as RgbImage).data instanceof Uint8Array;
}
