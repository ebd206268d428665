import type { RgbImage } from "./image.js";
import { imageFileSize, loadImage, resizeImage } from "./io.js";
import { fitLongEdge, type LoadOptions, type Size } from "./size.js";

/** An image given as a file path (a URL in a browser) or already decoded. */
export type ImageSource = string | RgbImage;

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
