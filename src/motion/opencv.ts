import { createRequire } from "node:module";
import { StylegramError } from "../errors.js";

/**
 * OpenCV's WebAssembly build (@techstark/opencv-js), loaded once, on first use: about 11 MB of
 * JavaScript and wasm that only video needs, so that nothing else pays for it. Only the few calls
 * stylegram makes are typed here.
 */

export interface CvMat {
  data: Uint8Array;
  data32F: Float32Array;
  rows: number;
  cols: number;
  delete(): void;
}

export interface OpenCv {
  Mat: new (rows?: number, cols?: number, type?: number) => CvMat;
  matFromArray(rows: number, cols: number, type: number, data: ArrayLike<number>): CvMat;
  Size: new (w: number, h: number) => unknown;
  Scalar: new (...v: number[]) => unknown;
  CV_8UC1: number;
  CV_8UC3: number;
  CV_32FC1: number;
  CV_32FC2: number;
  INTER_LINEAR: number;
  INTER_CUBIC: number;
  BORDER_REPLICATE: number;
  OPTFLOW_FARNEBACK_GAUSSIAN: number;
  calcOpticalFlowFarneback(
    prev: CvMat,
    next: CvMat,
    flow: CvMat,
    pyrScale: number,
    levels: number,
    winsize: number,
    iterations: number,
    polyN: number,
    polySigma: number,
    flags: number,
  ): void;
  remap(
    src: CvMat,
    dst: CvMat,
    map1: CvMat,
    map2: CvMat,
    interpolation: number,
    borderMode: number,
    borderValue: unknown,
  ): void;
}

// Held in a box: the Emscripten module is a thenable, and a promise of it would never settle.
let loading: Promise<{ cv: OpenCv }> | undefined;

/**
 * The OpenCV module, ready to use (its wasm compiled), in a box: `const { cv } = await openCv()`.
 * Never resolve a promise with the module itself (nor return it from an async function).
 */
export function openCv(): Promise<{ cv: OpenCv }> {
  loading ??= (async () => {
    let cv: unknown;
    try {
      cv = createRequire(import.meta.url)("@techstark/opencv-js");
    } catch (e) {
      throw new StylegramError(
        `cannot load OpenCV (@techstark/opencv-js), which video needs for the optical flow: ${(e as Error).message}. Reinstall stylegram's dependencies (npm install)`,
        { cause: e },
      );
    }
    // Some builds export a promise of the module, others the module, ready once its runtime is.
    if (cv instanceof Promise) cv = await cv;
    const m = cv as OpenCv & { onRuntimeInitialized?: () => void };
    if (typeof m.Mat !== "function")
      await new Promise<void>((resolve) => {
        m.onRuntimeInitialized = resolve;
      });
    return { cv: m };
  })();
  return loading;
}
