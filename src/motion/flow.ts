import type { RgbImage } from "../image/image.js";
import { type CvMat, type OpenCv, openCv } from "./opencv.js";

/**
 * A dense optical flow from image A to image B: for each pixel p of A, where it moved to in B,
 * A(p) ~ B(p + flow(p)). `data` interleaves dx, dy per pixel, rows top to bottom, in pixels.
 */
export interface Flow {
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;
}

/**
 * Farneback's dense flow (OpenCV), on the frames' luminance, with OpenCV's usual settings (a 15 px
 * window, 3 iterations, polynomials of 5 px and sigma 1.2); the pyramid goes down to about 16 px, so
 * that motions of a good part of the picture are found. A wider window (31 px, 5 iterations, 7/1.5)
 * halves the flow's error on a smooth pan, but smooths the flow across an object's edge so much that
 * the consistency check misses most of what the object uncovers (94% of the strip behind a 40 px
 * square masked with these settings, 19% with the wide ones): the ghosts the check is there to
 * prevent. docs/video.md and npm run bench:video have the measurements.
 */
export interface FarnebackSettings {
  pyrScale: number;
  winsize: number;
  iterations: number;
  polyN: number;
  polySigma: number;
}

export const FARNEBACK: FarnebackSettings = {
  pyrScale: 0.5,
  winsize: 15,
  iterations: 3,
  polyN: 5,
  polySigma: 1.2,
};
/** The wide window, measured against in bench:video. */
export const FARNEBACK_WIDE: FarnebackSettings = {
  pyrScale: 0.5,
  winsize: 31,
  iterations: 5,
  polyN: 7,
  polySigma: 1.5,
};

function grey(cv: OpenCv, img: RgbImage): CvMat {
  const m = new cv.Mat(img.height, img.width, cv.CV_8UC1);
  const out = m.data;
  for (let p = 0; p < img.width * img.height; p++) {
    out[p] = Math.round(
      0.299 * (img.data[3 * p] as number) +
        0.587 * (img.data[3 * p + 1] as number) +
        0.114 * (img.data[3 * p + 2] as number),
    );
  }
  return m;
}

/** Pyramid levels above the finest: halvings while the coarsest level keeps 16 px on its short edge. */
export function pyramidLevels(width: number, height: number): number {
  return Math.max(0, Math.floor(Math.log2(Math.min(width, height) / 16)));
}

/** The flow from `a` to `b` (two frames of one size). */
export async function opticalFlow(a: RgbImage, b: RgbImage, f: FarnebackSettings = FARNEBACK): Promise<Flow> {
  if (a.width !== b.width || a.height !== b.height)
    throw new Error(`optical flow between ${a.width}x${a.height} and ${b.width}x${b.height} frames`);
  const { cv } = await openCv();
  const ga = grey(cv, a);
  const gb = grey(cv, b);
  const flow = new cv.Mat();
  try {
    cv.calcOpticalFlowFarneback(
      ga,
      gb,
      flow,
      f.pyrScale,
      pyramidLevels(a.width, a.height),
      f.winsize,
      f.iterations,
      f.polyN,
      f.polySigma,
      0,
    );
    return { width: a.width, height: a.height, data: Float32Array.from(flow.data32F) };
  } finally {
    ga.delete();
    gb.delete();
    flow.delete();
  }
}
