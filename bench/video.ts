/**
 * npm run bench:video: the optical flow's accuracy and time (Farneback, our settings against
 * OpenCV's sample ones), and the flicker of stylized video with and without the temporal loss, on
 * self-made clips of known motion (a photo panned by a whole number of pixels per frame).
 *
 *   --size 96 --frames 16 --iterations 12 --frame-iterations 4 --step 2
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { stylizeVideo } from "../src/api/video.js";
import type { RgbImage } from "../src/image/image.js";
import { warpingError } from "../src/motion/flicker.js";
import {
  FARNEBACK,
  FARNEBACK_OPENCV_SAMPLE,
  type FarnebackSettings,
  opticalFlow,
} from "../src/motion/flow.js";
import { openCv } from "../src/motion/opencv.js";
import { warpImage } from "../src/motion/warp.js";
import { loadWeightsFrom } from "../src/network/load.js";
import { decodeFrames, knownMotionError, pannedClip } from "../test/support/video.js";
import { arg, fmt, printTable, SHARED, WEIGHTS } from "./common.js";

const size = Number(arg("--size", "96"));
const frames = Number(arg("--frames", "16"));
const iterations = Number(arg("--iterations", "12"));
const frameIterations = Number(arg("--frame-iterations", "4"));
const step = Number(arg("--step", "2"));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-video-"));
const style = path.join(SHARED, "images", "starry_night.jpg");

// OpenCV's wasm compiles on first use (about half a second): not part of a flow's time.
await openCv();

// 1. The flow: end-point error against the known motion, the input's own warping error, time.
const flowRows: string[][] = [];
for (const [photo, width, height, px] of [
  ["tubingen.jpg", 96, 64, 2],
  ["shipwreck.jpg", 96, 64, 3],
  ["tubingen.jpg", 480, 320, 5],
] as const) {
  const clip = await pannedClip(path.join(dir, `flow_${photo}_${width}.mkv`), {
    photo,
    width,
    height,
    frames: 2,
    step: px,
  });
  const [a, b] = decodeFrames(clip.file, width, height).map(
    (data): RgbImage => ({ width, height, data }),
  ) as [RgbImage, RgbImage];
  for (const [name, settings] of [
    ["OpenCV sample (15 px, 3 it, 5/1.2)", FARNEBACK_OPENCV_SAMPLE],
    ["stylegram (31 px, 5 it, 7/1.5)", FARNEBACK],
  ] as [string, FarnebackSettings][]) {
    const started = performance.now();
    const flow = await opticalFlow(b, a, settings);
    const ms = performance.now() - started;
    let epe = 0;
    let n = 0;
    for (let y = 0; y < height; y++)
      for (let x = 0; x + px < width; x++, n++)
        epe += Math.hypot(
          (flow.data[2 * (y * width + x)] as number) - px,
          flow.data[2 * (y * width + x) + 1] as number,
        );
    const warped = await warpImage(a, flow);
    const certain = Float32Array.from(warped.outside, (o) => 1 - o);
    const e = warpingError(b, warped.image, certain);
    flowRows.push([
      `${photo} ${width}x${height}, ${px} px/frame`,
      name,
      fmt(epe / n, 3),
      fmt(e.sum / e.weight, 1),
      fmt(ms, 1),
    ]);
  }
}
console.log("\nOptical flow (Farneback, @techstark/opencv-js): error against the known pan, and time\n");
printTable(["clip", "settings", "end-point error (px)", "input warping error", "ms per flow"], flowRows);

// 2. Flicker: the temporal loss against independent frames, short- and long-term.
const weights = await loadWeightsFrom(WEIGHTS);
const rows: string[][] = [];
for (const photo of ["tubingen.jpg", "shipwreck.jpg"]) {
  const clip = await pannedClip(path.join(dir, `pan_${photo}.mkv`), {
    photo,
    frames,
    step,
    width: size,
    height: Math.round((size * 2) / 3),
  });
  for (const [label, temporalWeight, temporalFrames] of [
    ["independent (--temporal-weight 0)", 0, [1]],
    ["short-term (default)", undefined, [1]],
    ["long-term 1,2,4", undefined, [1, 2, 4]],
  ] as [string, number | undefined, number[]][]) {
    const output = path.join(dir, `out_${photo}_${label.length}.mkv`);
    const r = await stylizeVideo({
      input: clip.file,
      output,
      styles: [style],
      size,
      iterations,
      frameIterations,
      temporalFrames,
      ...(temporalWeight === undefined ? {} : { temporalWeight }),
      weights,
      force: true,
    });
    const known = knownMotionError(decodeFrames(output, r.width, r.height), r.width, r.height, step);
    rows.push([
      photo,
      label,
      fmt(r.warpingError, 1),
      fmt(known, 1),
      r.styleLoss.toExponential(3),
      fmt(r.seconds, 1),
    ]);
  }
}
console.log(
  `\nFlicker: ${frames} frames panned ${step} px/frame at ${size} px, ${iterations} iterations for the first frame, ${frameIterations} for each later one (independent: ${iterations} each)\n`,
);
printTable(
  ["clip", "frames", "warping error (flow)", "warping error (known motion)", "style loss", "seconds"],
  rows,
);
fs.rmSync(dir, { recursive: true, force: true });
