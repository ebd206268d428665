import type { Flow } from "./flow.js";
import { warpFlow } from "./warp.js";

/**
 * Where a flow can be trusted: the forward-backward consistency check and the motion-boundary check
 * of Ruder, Dosovitskiy and Brox (GCPR 2016, section 3.2), with Sundaram et al.'s coefficients.
 *
 * With ŵ the backward flow (frame t to frame t-1, on frame t's pixels) and w the forward flow (t-1 to
 * t), w̃(p) = w(p + ŵ(p)) is the forward flow carried onto frame t. Where p was visible in both frames
 * the two cancel; elsewhere p was disoccluded:
 *   |w̃ + ŵ|^2 > 0.01 (|w̃|^2 + |ŵ|^2) + 0.5.
 * Motion boundaries, where the flow is least reliable, are where the backward flow changes fast:
 *   |∇û|^2 + |∇v̂|^2 > 0.01 |ŵ|^2 + 0.002.
 * A pixel whose source lies outside frame t-1 has come into view, and counts as disoccluded.
 */

export interface Certainty {
  width: number;
  height: number;
  /** 1 where the warped previous frame is trusted, 0 at disocclusions and motion boundaries. */
  certain: Float32Array;
  /** 1 where the pixel was not visible in the earlier frame (disoccluded, or come into view). */
  disoccluded: Uint8Array;
}

/** The certainty of frame t's pixels in frame t-1 warped by `backward` (t -> t-1), given `forward` (t-1 -> t). */
export async function flowCertainty(backward: Flow, forward: Flow): Promise<Certainty> {
  const { width, height } = backward;
  const warped = await warpFlow(forward, backward);
  const carried = warped.flow.data;
  const { outside } = warped;
  const b = backward.data;
  const certain = new Float32Array(width * height);
  const disoccluded = new Uint8Array(width * height);
  // The backward flow's gradient by central differences (one-sided at the edges).
  const grad = (k: number, x: number, y: number) => {
    const dx =
      ((b[2 * (y * width + Math.min(width - 1, x + 1)) + k] as number) -
        (b[2 * (y * width + Math.max(0, x - 1)) + k] as number)) /
      (Math.min(width - 1, x + 1) - Math.max(0, x - 1) || 1);
    const dy =
      ((b[2 * (Math.min(height - 1, y + 1) * width + x) + k] as number) -
        (b[2 * (Math.max(0, y - 1) * width + x) + k] as number)) /
      (Math.min(height - 1, y + 1) - Math.max(0, y - 1) || 1);
    return dx * dx + dy * dy;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const bu = b[2 * p] as number;
      const bv = b[2 * p + 1] as number;
      const fu = carried[2 * p] as number;
      const fv = carried[2 * p + 1] as number;
      const sum = (fu + bu) ** 2 + (fv + bv) ** 2;
      const occluded = sum > 0.01 * (fu * fu + fv * fv + bu * bu + bv * bv) + 0.5 || outside[p] === 1;
      const boundary = grad(0, x, y) + grad(1, x, y) > 0.01 * (bu * bu + bv * bv) + 0.002;
      if (occluded) disoccluded[p] = 1;
      certain[p] = occluded || boundary ? 0 : 1;
    }
  }
  return { width, height, certain, disoccluded };
}
