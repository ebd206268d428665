import type { RgbImage } from "../image/image.js";
import type { Mask } from "../image/masks.js";
import { type Certainty, flowCertainty } from "./consistency.js";
import { type Flow, opticalFlow } from "./flow.js";
import { warpImage } from "./warp.js";

/**
 * What a video frame's optimisation needs from the frames before it (Ruder et al., sections 3.2 and
 * 3.3): each earlier result warped onto this frame by the input's flow, how certain each pixel of it
 * is, their combination for the long-term loss, and the start of the optimisation.
 */

/** The flows between frame t and an earlier frame t-j, both ways, computed once on the input frames. */
export interface FramePair {
  j: number;
  /** t -> t-j, on frame t's pixels: carries frame t-j onto frame t. */
  backward: Flow;
  /** t-j -> t, on frame t-j's pixels: the other half of the consistency check. */
  forward: Flow;
}

/** The flows between an input frame and each earlier one it is held to. */
export async function framePairs(
  frame: RgbImage,
  earlier: ReadonlyMap<number, RgbImage>,
  js: readonly number[],
): Promise<FramePair[]> {
  const pairs: FramePair[] = [];
  for (const j of [...js].sort((a, b) => a - b)) {
    const before = earlier.get(j);
    if (!before) continue;
    pairs.push({ j, backward: await opticalFlow(frame, before), forward: await opticalFlow(before, frame) });
  }
  return pairs;
}

export interface FrameTarget {
  /** The temporal term's target and certainty (stylize()'s `temporal`). */
  temporal: { target: RgbImage; certainty: Mask };
  /** Where the optimisation starts: the previous result warped, disoccluded pixels from the photo. */
  init: RgbImage;
  /** The previous result warped, and its certainty: what the warping error compares with. */
  previous: { warped: RgbImage; certainty: Certainty };
}

/**
 * The long-term combination (their eq. 8): frame t-j's certainty counts only where no nearer frame
 * is certain, c_long(t-j) = max(c(t-j) - sum over nearer k of c(t-k), 0), so that each pixel is held
 * to the latest frame it was visible in. These weights are disjoint, so the sum of the per-frame
 * terms is one term with the per-pixel weighted mean of the warped frames as its target and the sum
 * of the weights as its certainty; with J = {1} it is the short-term loss (eq. 7).
 *
 * `outputs` are the stylized earlier frames by j; `content` is this frame's photo.
 */
export async function frameTarget(
  content: RgbImage,
  pairs: readonly FramePair[],
  outputs: ReadonlyMap<number, RgbImage>,
): Promise<FrameTarget | undefined> {
  const { width, height } = content;
  const plane = width * height;
  const used = new Float32Array(plane);
  const weight = new Float32Array(plane);
  const sum = new Float32Array(3 * plane);
  let previous: FrameTarget["previous"] | undefined;
  for (const pair of pairs) {
    const output = outputs.get(pair.j);
    if (!output) continue;
    const warped = (await warpImage(output, pair.backward)).image;
    const certainty = await flowCertainty(pair.backward, pair.forward);
    if (pair.j === pairs[0]?.j) previous = { warped, certainty };
    for (let p = 0; p < plane; p++) {
      const c = Math.max(0, (certainty.certain[p] as number) - (used[p] as number));
      used[p] = (used[p] as number) + (certainty.certain[p] as number);
      if (c === 0) continue;
      weight[p] = (weight[p] as number) + c;
      for (let k = 0; k < 3; k++)
        sum[3 * p + k] = (sum[3 * p + k] as number) + c * (warped.data[3 * p + k] as number);
    }
  }
  if (!previous) return undefined;
  const nearest = previous.warped;
  const target = new Uint8Array(3 * plane);
  const init = new Uint8Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    const w = weight[p] as number;
    for (let k = 0; k < 3; k++) {
      const i = 3 * p + k;
      target[i] = w > 0 ? Math.round((sum[i] as number) / w) : (nearest.data[i] as number);
      // A pixel nothing showed before starts from the photo (it is then stylized like a first frame's).
      init[i] =
        previous.certainty.disoccluded[p] === 1 ? (content.data[i] as number) : (nearest.data[i] as number);
    }
    weight[p] = Math.min(1, w);
  }
  return {
    temporal: { target: { width, height, data: target }, certainty: { width, height, data: weight } },
    init: { width, height, data: init },
    previous,
  };
}
