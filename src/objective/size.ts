import { StylegramError } from "../errors.js";
import { deepest, poolsBefore } from "../network/layers.js";

/** Every pooling halves the image; a layer after p poolings needs at least 2^p pixels on each side. */
export function minimumSize(layers: readonly string[]): number {
  return layers.length === 0 ? 1 : 2 ** poolsBefore(deepest(layers));
}

export function checkImageSize(
  what: string,
  img: { width: number; height: number },
  layers: readonly string[],
): void {
  const min = minimumSize(layers);
  if (img.width < min || img.height < min) {
    throw new StylegramError(
      `${what} is ${img.width}x${img.height}, too small for layer ${deepest(layers)}: it needs at least ${min}x${min} pixels. ` +
        "Use a larger image, or layers that stop earlier (--content-layers, --style-layers)",
    );
  }
}
