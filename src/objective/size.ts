import { message, opt, StylegramError } from "../errors.js";
import { fitLongEdge, type Size } from "../image/size.js";
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
      message`${what} is ${img.width}x${img.height}, too small for layer ${deepest(layers)}: it needs at least ${min}x${min} pixels. Use a larger image, or layers that stop earlier (${opt("contentLayers")}, ${opt("styleLayers")})`,
    );
  }
}

/** The smallest long edge at which an image keeps the deepest layer's minimum on its short side. */
export function neededEdge(size: Size, layers: readonly string[]): number {
  if (layers.length === 0) return 1;
  const min = minimumSize(layers);
  const long = Math.max(size.width, size.height);
  const short = Math.min(size.width, size.height);
  // fitLongEdge rounds short * edge / long: it reaches min once that is min - 1/2 (floats: check and step).
  let edge = Math.max(1, Math.ceil(((min - 0.5) * long) / short));
  while (edge > 1 && shortSideAt(size, edge - 1) >= min) edge--;
  while (shortSideAt(size, edge) < min) edge++;
  return edge;
}

function shortSideAt(size: Size, longEdge: number): number {
  const f = fitLongEdge(size, longEdge);
  return Math.min(f.width, f.height);
}

/** The smallest output size whose style edge, round(size * styleScale), is at least `edge`. */
export function sizeForStyleEdge(edge: number, styleScale: number): number {
  if (edge <= 1) return 1;
  let size = Math.max(1, Math.ceil((edge - 0.5) / styleScale));
  if (!Number.isFinite(size) || size > Number.MAX_SAFE_INTEGER) return Number.POSITIVE_INFINITY;
  while (size > 1 && Math.round((size - 1) * styleScale) >= edge) size--;
  while (Math.round(size * styleScale) < edge) size++;
  return size;
}
