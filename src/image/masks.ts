import { StylegramError } from "../errors.js";
import type { RgbImage } from "./image.js";

/**
 * A region of an image, one value per pixel, rows top to bottom: 1 inside (white), 0 outside
 * (black), grey in between (a soft edge weighs its pixels in part).
 */
export interface Mask {
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;
}

/** The brightness of an image as a mask: BT.601 luminance, 0..255 -> 0..1. */
export function maskFromImage(img: RgbImage): Mask {
  const data = new Float32Array(img.width * img.height);
  for (let p = 0; p < data.length; p++) {
    const y =
      0.299 * (img.data[3 * p] as number) +
      0.587 * (img.data[3 * p + 1] as number) +
      0.114 * (img.data[3 * p + 2] as number);
    data[p] = Math.min(1, Math.max(0, y / 255));
  }
  return { width: img.width, height: img.height, data };
}

/**
 * For each output index along an axis of `from` -> `to` samples, the source indices and weights that
 * make it: the area average of the source pixels it covers when shrinking, linear interpolation
 * between the two nearest when enlarging. Either way the weights are >= 0 and sum to 1, so a mask
 * stays within 0..1 and masks that add up to 1 everywhere still do after resizing (no ringing as with
 * Lanczos, no rounding to 8 bits as through an image library): that is why this is written here.
 */
function axisWeights(from: number, to: number): { index: number[]; weight: number[] }[] {
  const out: { index: number[]; weight: number[] }[] = [];
  const ratio = from / to;
  for (let o = 0; o < to; o++) {
    const index: number[] = [];
    const weight: number[] = [];
    if (ratio >= 1) {
      const start = o * ratio;
      const end = (o + 1) * ratio;
      for (let i = Math.floor(start); i < Math.min(from, Math.ceil(end)); i++) {
        const w = Math.min(end, i + 1) - Math.max(start, i);
        if (w > 0) {
          index.push(i);
          weight.push(w / ratio);
        }
      }
    } else {
      const x = Math.min(from - 1, Math.max(0, (o + 0.5) * ratio - 0.5));
      const i = Math.floor(x);
      const f = x - i;
      index.push(i);
      weight.push(1 - f);
      if (f > 0) {
        index.push(Math.min(from - 1, i + 1));
        weight.push(f);
      }
    }
    out.push({ index, weight });
  }
  return out;
}

/** A mask resized to width x height (the aspect ratio is not kept: a mask is stretched onto its image). */
export function resizeMask(m: Mask, width: number, height: number): Mask {
  if (m.width === width && m.height === height) return m;
  const xs = axisWeights(m.width, width);
  const ys = axisWeights(m.height, height);
  const rows = new Float32Array(m.height * width);
  for (let y = 0; y < m.height; y++)
    for (let x = 0; x < width; x++) {
      const { index, weight } = xs[x] as { index: number[]; weight: number[] };
      let s = 0;
      for (let k = 0; k < index.length; k++)
        s += (weight[k] as number) * (m.data[y * m.width + (index[k] as number)] as number);
      rows[y * width + x] = s;
    }
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const { index, weight } = ys[y] as { index: number[]; weight: number[] };
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = 0; k < index.length; k++)
        s += (weight[k] as number) * (rows[(index[k] as number) * width + x] as number);
      data[y * width + x] = Math.min(1, Math.max(0, s));
    }
  }
  return { width, height, data };
}

/** Whether a mask selects nothing at all (black everywhere). */
export function isEmptyMask(m: Mask): boolean {
  return !m.data.some((v) => v > 0);
}

/**
 * How a set of masks (of one size) covers the image: the share of pixels that no mask covers (the
 * masks add up to less than a half there) and the share that two or more cover (more than one and a
 * half).
 */
export function maskCoverage(masks: readonly Mask[]): { uncovered: number; overlapping: number } {
  const first = masks[0];
  if (!first) return { uncovered: 1, overlapping: 0 };
  for (const m of masks)
    if (m.width !== first.width || m.height !== first.height)
      throw new StylegramError("maskCoverage: the masks differ in size");
  let uncovered = 0;
  let overlapping = 0;
  const n = first.width * first.height;
  for (let p = 0; p < n; p++) {
    let sum = 0;
    for (const m of masks) sum += m.data[p] as number;
    if (sum < 0.5) uncovered++;
    else if (sum > 1.5) overlapping++;
  }
  return { uncovered: uncovered / n, overlapping: overlapping / n };
}
