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
 * Farneback's dense flow (OpenCV), on the frames' luminance. The pyramid goes down to about 16 px so
 * that motions of a good part of the picture are found. A 31 px window with 5 iterations and the
 * wider polynomial (7, 1.5) instead of OpenCV's sample settings (15, 3, 5, 1.2): on panned test clips
 * half the flow error for the same time, and a steadier stylized video (docs/video.md, bench:video).
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
  winsize: 31,
  iterations: 5,
  polyN: 7,
  polySigma: 1.5,
};
/** OpenCV's sample settings, measured against in bench:video. */
export const FARNEBACK_OPENCV_SAMPLE: FarnebackSettings = {
  pyrScale: 0.5,
  winsize: 15,
  iterations: 3,
  polyN: 5,
  polySigma: 1.2,
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
