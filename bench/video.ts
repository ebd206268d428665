/**
 * npm run bench:video: the optical flow's accuracy and time (Farneback, our settings against
 * OpenCV's sample ones), and the flicker of stylized video with and without the temporal loss, on
 * self-made clips of known motion (a photo panned by a whole number of pixels per frame).
 *
 *   --size 96 --frames 16 --iterations 12 --frame-iterations 4 --step 2 [--only flow|flicker]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { stylizeVideo } from "../src/api/video.js";
import type { RgbImage } from "../src/image/image.js";
import { flowCertainty } from "../src/motion/consistency.js";
import { FARNEBACK, FARNEBACK_WIDE, type FarnebackSettings, opticalFlow } from "../src/motion/flow.js";
import { openCv } from "../src/motion/opencv.js";
import { loadWeightsFrom } from "../src/network/load.js";
import { decodeFrames, knownMotionError, pannedClip } from "../test/support/video.js";
import { arg, fmt, printTable, SHARED, WEIGHTS } from "./common.js";

const size = Number(arg("--size", "96"));
const frames = Number(arg("--frames", "16"));
const iterations = Number(arg("--iterations", "12"));
const frameIterations = Number(arg("--frame-iterations", "4"));
const step = Number(arg("--step", "2"));
const only = arg("--only", "all");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-video-"));
const style = path.join(SHARED, "images", "starry_night.jpg");

// OpenCV's wasm compiles on first use (about half a second): not part of a flow's time.
await openCv();

// 1. The flow: end-point error against the known pan, how much of what a moving object uncovers the
// consistency check masks, and the time of one flow.
const flowClips = [
  ["tubingen.jpg", 96, 64, 2],
  ["shipwreck.jpg", 96, 64, 3],
  ["tubingen.jpg", 480, 320, 5],
] as const;
const pans: [RgbImage, RgbImage, number][] = [];
for (const [photo, width, height, px] of only === "flicker" ? [] : flowClips) {
  const clip = await pannedClip(path.join(dir, `flow_${photo}_${width}.mkv`), {
    photo,
    width,
    height,
    frames: 2,
    step: px,
  });
  const [a, b] = decodeFrames(clip.file, width, height).map((data): RgbImage => ({ width, height, data }));
  pans.push([a as RgbImage, b as RgbImage, px]);
}
/** A textured 40 px square moving 8 px right over a still textured background, 128x96. */
function movingSquare(left: number): RgbImage {
  const [w, h] = [128, 96];
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < 3; k++) {
        const inside = x >= left && x < left + 40 && y >= 28 && y < 68;
        const u = inside ? x - left : x;
        const v =
          128 +
          50 * Math.sin(0.31 * u + 0.7 * k + (inside ? 2 : 0)) * Math.cos(0.23 * y) +
          30 * Math.sin(0.17 * y - 0.11 * u);
        data[3 * (y * w + x) + k] = Math.max(0, Math.min(255, Math.round(inside ? 255 - v : v)));
      }
  return { width: w, height: h, data };
}
const flowRows: string[][] = [];
for (const [name, settings] of (only === "flicker"
  ? []
  : [
      ["OpenCV's usual (15 px, 3 it, 5/1.2): the default", FARNEBACK],
      ["wide (31 px, 5 it, 7/1.5)", FARNEBACK_WIDE],
    ]) as [string, FarnebackSettings][]) {
  const cells: string[] = [name];
  let ms = 0;
  for (const [a, b, px] of pans) {
    const started = performance.now();
    const flow = await opticalFlow(b, a, settings);
    ms = performance.now() - started;
    let epe = 0;
    let n = 0;
    for (let y = 0; y < a.height; y++)
      for (let x = 0; x + px < a.width; x++, n++)
        epe += Math.hypot(
          (flow.data[2 * (y * a.width + x)] as number) - px,
          flow.data[2 * (y * a.width + x) + 1] as number,
        );
    cells.push(fmt(epe / n, 3));
  }
  const [before, after] = [movingSquare(40), movingSquare(48)];
  const { certain } = await flowCertainty(
    await opticalFlow(after, before, settings),
    await opticalFlow(before, after, settings),
  );
  let masked = 0;
  for (let y = 30; y < 66; y++) for (let x = 41; x < 47; x++) masked += certain[y * 128 + x] === 0 ? 1 : 0;
  cells.push(`${fmt((100 * masked) / (36 * 6), 0)}%`, fmt(ms, 1));
  flowRows.push(cells);
}
if (flowRows.length > 0) {
  console.log("\nOptical flow (Farneback, @techstark/opencv-js)\n");
  printTable(
    [
      "settings",
      "pan error, Tübingen 96 px (px)",
      "The Shipwreck 96 px",
      "Tübingen 480 px",
      "uncovered strip masked",
      "ms per flow at 480x320",
    ],
    flowRows,
  );
}

// 2. Flicker: the temporal loss against independent frames, short- and long-term.
const weights = await loadWeightsFrom(WEIGHTS);
const rows: string[][] = [];
for (const photo of only === "flow" ? [] : ["tubingen.jpg", "shipwreck.jpg"]) {
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
if (rows.length > 0)
  console.log(
    `\nFlicker: ${frames} frames panned ${step} px/frame at ${size} px, ${iterations} iterations for the first frame, ${frameIterations} for each later one (independent: ${iterations} each)\n`,
  );
if (rows.length > 0)
  printTable(
    ["clip", "frames", "warping error (flow)", "warping error (known motion)", "style loss", "seconds"],
    rows,
  );
fs.rmSync(dir, { recursive: true, force: true });
