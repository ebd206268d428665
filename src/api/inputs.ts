import type { RgbImage } from "../image/image.js";
import { type LoadOptions, loadImage } from "../image/io.js";
import { loadWeights, type VggWeights } from "../network/weights.js";

/** An image given as a file path or already decoded. */
export type ImageSource = string | RgbImage;

export async function resolveImage(src: ImageSource, options: LoadOptions = {}): Promise<RgbImage> {
  return typeof src === "string" ? loadImage(src, options) : src;
}

/** Weights given as a folder, already loaded, or (undefined) from $STYLEGRAM_WEIGHTS. */
export function resolveWeights(w: string | VggWeights | undefined): VggWeights {
  return w === undefined || typeof w === "string" ? loadWeights(w) : w;
}
