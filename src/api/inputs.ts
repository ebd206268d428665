import type { RgbImage } from "../image/image.js";
import { type LoadOptions, loadImage, resizeImage } from "../image/io.js";
import { resolveWeightsFor } from "../models/resolve.js";
import type { VggWeights } from "../network/weights.js";

/** An image given as a file path or already decoded. */
export type ImageSource = string | RgbImage;

/** Decodes (or takes) an image, resized as asked. */
export async function resolveImage(src: ImageSource, options: LoadOptions = {}): Promise<RgbImage> {
  if (typeof src === "string") return loadImage(src, options);
  if (options.exact) return resizeImage(src, options.exact.width, options.exact.height);
  if (options.longEdge !== undefined) {
    const scale = options.longEdge / Math.max(src.width, src.height);
    return resizeImage(
      src,
      Math.max(1, Math.round(src.width * scale)),
      Math.max(1, Math.round(src.height * scale)),
    );
  }
  return src;
}

/** Weights given as loaded tensors, a folder or file, or (undefined) from $STYLEGRAM_WEIGHTS or the cache. */
export async function resolveWeights(w: string | VggWeights | undefined): Promise<VggWeights> {
  if (w !== undefined && typeof w !== "string") return w;
  return resolveWeightsFor(w === undefined ? {} : { path: w });
}
