import type { RgbImage } from "../image/image.js";

/**
 * The measure of flicker: the warping error between consecutive output frames, the mean squared
 * difference (0..255 levels, over the three channels) between output t+1 and output t warped onto it
 * by the input's flow, over the pixels where that flow is certain. Independent frames that each find
 * another optimum show it as a large error; a temporally consistent video as a small one.
 */
export interface WarpingError {
  /** Sum of c(p) * squared difference over pixels and channels. */
  sum: number;
  /** Sum of c(p) * 3: what the sum is a mean over. */
  weight: number;
}

/** One pair's warping error (its sum and weight, so that pairs add up). */
export function warpingError(later: RgbImage, warpedEarlier: RgbImage, certain: Float32Array): WarpingError {
  let sum = 0;
  let weight = 0;
  for (let p = 0; p < certain.length; p++) {
    const c = certain[p] as number;
    if (c === 0) continue;
    for (let k = 0; k < 3; k++) {
      const d = (later.data[3 * p + k] as number) - (warpedEarlier.data[3 * p + k] as number);
      sum += c * d * d;
    }
    weight += 3 * c;
  }
  return { sum, weight };
}

/** The mean of several pairs' errors (NaN when no pixel was certain). */
export function meanWarpingError(errors: readonly WarpingError[]): number {
  const sum = errors.reduce((s, e) => s + e.sum, 0);
  const weight = errors.reduce((s, e) => s + e.weight, 0);
  return weight > 0 ? sum / weight : Number.NaN;
}
