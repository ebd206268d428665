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
/**
 * Scenes of a textured square moving right over a still textured background: what it uncovers in
 * the later frame was hidden in the earlier one, so the consistency check should mask it.
 */
const SCENES = [
  // [frame width, height, square, pixels moved, texture]
  [128, 96, 40, 8, 0],
  [64, 48, 16, 6, 0],
  [160, 120, 48, 4, 0],
  [128, 96, 40, 8, 1],
] as const;
function texture(x: number, y: number, k: number, kind: number): number {
  return kind === 0
    ? 128 +
        50 * Math.sin(0.31 * x + 0.7 * k) * Math.cos(0.23 * y) +
        30 * Math.sin(0.11 * x * (1 + 0.1 * k) + 0.17 * y) +
        20 * Math.cos(0.53 * y - 0.2 * x)
    : 128 + 50 * Math.sin(0.31 * x + 0.7 * k) * Math.cos(0.23 * y) + 30 * Math.sin(0.17 * y - 0.11 * x);
}
function sceneFrame(scene: (typeof SCENES)[number], left: number): RgbImage {
  const [w, h, size, , kind] = scene;
  const top = h / 2 - size / 2;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < 3; k++) {
        const inside = x >= left && x < left + size && y >= top && y < top + size;
        const v = inside ? 255 - texture(x - left, y, k + 3, kind) : texture(x, y, k, kind);
        data[3 * (y * w + x) + k] = Math.max(0, Math.min(255, Math.round(v)));
      }
  return { width: w, height: h, data };
}
/** The share of the uncovered strip (less a pixel at its sides) that the check masks. */
async function maskedShare(scene: (typeof SCENES)[number], settings: FarnebackSettings): Promise<number> {
  const [w, h, size, move] = scene;
  const left = Math.round(w / 2 - size / 2 - move / 2);
  const [before, after] = [sceneFrame(scene, left), sceneFrame(scene, left + move)];
  const { certain } = await flowCertainty(
    await opticalFlow(after, before, settings),
    await opticalFlow(before, after, settings),
  );
  let masked = 0;
  let n = 0;
  for (let y = h / 2 - size / 2 + 2; y < h / 2 + size / 2 - 2; y++)
    for (let x = left + 1; x < left + move - 1; x++, n++) masked += certain[y * w + x] === 0 ? 1 : 0;
  return masked / n;
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
  const shares: number[] = [];
  for (const scene of SCENES) shares.push(await maskedShare(scene, settings));
  cells.push(shares.map((v) => `${fmt(100 * v, 0)}%`).join(" "), fmt(ms, 1));
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
      "uncovered strip masked (4 scenes)",
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
