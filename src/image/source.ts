import type { RgbImage } from "./image.js";
import { imageFileSize, type LoadOptions, loadImage, resizeImage } from "./io.js";

/** An image given as a file path or already decoded. */
export type ImageSource = string | RgbImage;

export interface Size {
  width: number;
  height: number;
}

/** The size an image of `size` gets when its long edge is resized to `longEdge` (as loadImage does). */
export function fitLongEdge(size: Size, longEdge: number): Size {
  const scale = longEdge / Math.max(size.width, size.height);
  return {
    width: Math.max(1, Math.round(size.width * scale)),
    height: Math.max(1, Math.round(size.height * scale)),
  };
}

/** An image's size from its header (a file is not decoded). */
export async function sourceSize(src: ImageSource): Promise<Size> {
  return typeof src === "string" ? imageFileSize(src) : { width: src.width, height: src.height };
}

/** Decodes (or takes) an image, resized as asked. */
export async function resolveImage(src: ImageSource, options: LoadOptions = {}): Promise<RgbImage> {
  if (typeof src === "string") return loadImage(src, options);
  if (options.exact) return resizeImage(src, options.exact.width, options.exact.height);
  if (options.longEdge !== undefined) {
    const { width, height } = fitLongEdge(src, options.longEdge);
    return resizeImage(src, width, height);
  }
  return src;
}
