import type { RgbImage } from "../image/image.js";
import type { Flow } from "./flow.js";
import { type CvMat, type OpenCv, openCv } from "./opencv.js";

/**
 * Warping by a flow with OpenCV's remap: out(p) = src(p + flow(p)), bicubic for pictures (each frame
 * starts from the previous one warped, and bilinear's blur would add up frame after frame), bilinear
 * for flows. With the flow from
 * frame t to frame t-1 it carries frame t-1's picture (or its flow) onto frame t's pixels. Sources
 * outside the picture take the nearest edge pixel, and `outside` marks them: nothing there is known.
 */

interface Maps {
  x: CvMat;
  y: CvMat;
  outside: Uint8Array;
}

function mapsOf(cv: OpenCv, flow: Flow): Maps {
  const { width, height } = flow;
  const x = new cv.Mat(height, width, cv.CV_32FC1);
  const y = new cv.Mat(height, width, cv.CV_32FC1);
  const outside = new Uint8Array(width * height);
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      const p = row * width + col;
      const sx = col + (flow.data[2 * p] as number);
      const sy = row + (flow.data[2 * p + 1] as number);
      x.data32F[p] = sx;
      y.data32F[p] = sy;
      if (sx < -0.5 || sy < -0.5 || sx > width - 0.5 || sy > height - 0.5) outside[p] = 1;
    }
  }
  return { x, y, outside };
}

async function remap<T extends Uint8Array | Float32Array>(
  data: T,
  type: (cv: OpenCv) => number,
  flow: Flow,
  interpolation: (cv: OpenCv) => number,
): Promise<{ data: T; outside: Uint8Array }> {
  const { cv } = await openCv();
  const maps = mapsOf(cv, flow);
  const src = cv.matFromArray(flow.height, flow.width, type(cv), data);
  const dst = new cv.Mat();
  try {
    cv.remap(src, dst, maps.x, maps.y, interpolation(cv), cv.BORDER_REPLICATE, new cv.Scalar());
    const out = (
      data instanceof Uint8Array ? Uint8Array.from(dst.data) : Float32Array.from(dst.data32F)
    ) as T;
    return { data: out, outside: maps.outside };
  } finally {
    for (const m of [src, dst, maps.x, maps.y]) m.delete();
  }
}

/** An image warped by a flow, and the pixels whose source lies outside it. */
export async function warpImage(
  img: RgbImage,
  flow: Flow,
): Promise<{ image: RgbImage; outside: Uint8Array }> {
  if (img.width !== flow.width || img.height !== flow.height)
    throw new Error(`warping a ${img.width}x${img.height} image by a ${flow.width}x${flow.height} flow`);
  const { data, outside } = await remap(
    img.data,
    (cv) => cv.CV_8UC3,
    flow,
    (cv) => cv.INTER_CUBIC,
  );
  return { image: { width: img.width, height: img.height, data }, outside };
}

/** A flow warped by another: flow(p + by(p)), the forward flow carried onto the later frame. */
export async function warpFlow(flow: Flow, by: Flow): Promise<{ flow: Flow; outside: Uint8Array }> {
  const { data, outside } = await remap(
    flow.data,
    (cv) => cv.CV_32FC2,
    by,
    (cv) => cv.INTER_LINEAR,
  );
  return { flow: { width: flow.width, height: flow.height, data }, outside };
}
