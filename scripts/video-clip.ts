/**
 * `npm run video-clip`: the README's clip, docs/video/pan.gif, remade from ../shared/images. A
 * camera move made here (a slow pan over Turner's The Shipwreck, public domain, drawing back a little) is
 * stylized in The Starry Night twice, as independent frames (--temporal-weight 0) and with the
 * temporal loss, and the two are shown side by side: the left one boils, the right one holds.
 *
 *   npm run video-clip [-- --width 160 --frames 24 --iterations 60 --frame-iterations 20]
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { stylizeVideo } from "../src/api/video.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SHARED = path.resolve(ROOT, "..", "shared");
const OUT = path.join(ROOT, "docs", "video");
const { values } = parseArgs({
  options: {
    width: { type: "string", default: "160" },
    frames: { type: "string", default: "24" },
    iterations: { type: "string", default: "60" },
    "frame-iterations": { type: "string", default: "20" },
  },
});
const width = Number(values.width);
const height = Math.round((width * 2) / 3 / 2) * 2;
const frames = Number(values.frames);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-clip-"));
const ffmpeg = (args: string[], input?: Buffer) => {
  const r = spawnSync("ffmpeg", ["-v", "error", "-y", ...args], { input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

// The camera: a window of the painting that moves right and draws back a little, frame by frame.
const source = sharp(path.join(SHARED, "images", "shipwreck.jpg"));
const { width: sw = 0, height: sh = 0 } = await source.metadata();
const raw: Buffer[] = [];
for (let t = 0; t < frames; t++) {
  const s = t / (frames - 1);
  const w = Math.round(sw * (0.54 + 0.08 * s));
  const h = Math.round((w * height) / width);
  const left = Math.round((sw - w) * (0.15 + 0.45 * s));
  const top = Math.round((sh - h) * (0.55 - 0.1 * s));
  raw.push(
    await sharp(path.join(SHARED, "images", "shipwreck.jpg"))
      .extract({ left, top, width: w, height: h })
      .resize(width, height, { kernel: "lanczos3" })
      .removeAlpha()
      .raw()
      .toBuffer(),
  );
}
const input = path.join(dir, "camera.mkv");
ffmpeg(
  [
    "-f",
    "rawvideo",
    "-pix_fmt",
    "rgb24",
    "-s",
    `${width}x${height}`,
    "-framerate",
    "8",
    "-i",
    "pipe:0",
  ].concat(["-c:v", "ffv1", "-pix_fmt", "bgr0", input]),
  Buffer.concat(raw),
);

const weights = loadManifestWeights(path.join(SHARED, "models", "vgg19"));
const made: Record<string, string> = {};
for (const [name, temporalWeight] of [
  ["independent", 0],
  ["consistent", undefined],
] as const) {
  const output = path.join(dir, `${name}.mkv`);
  const r = await stylizeVideo({
    input,
    output,
    styles: [path.join(SHARED, "images", "starry_night.jpg")],
    size: width,
    iterations: Number(values.iterations),
    frameIterations: Number(values["frame-iterations"]),
    ...(temporalWeight === undefined ? {} : { temporalWeight }),
    weights,
    force: true,
  });
  console.log(
    `${name}: warping error ${r.warpingError.toFixed(1)}, style loss ${r.styleLoss.toExponential(3)}, ${r.seconds.toFixed(0)} s`,
  );
  made[name] = output;
}

// Side by side, independent frames on the left; a GIF with one palette for the whole clip.
fs.mkdirSync(OUT, { recursive: true });
const gif = path.join(OUT, "pan.gif");
ffmpeg([
  "-i",
  made.independent as string,
  "-i",
  made.consistent as string,
  "-filter_complex",
  "[0:v][1:v]hstack=inputs=2,split[a][b];[a]palettegen=max_colors=128[p];[b][p]paletteuse=dither=bayer:bayer_scale=3",
  "-loop",
  "0",
  gif,
]);
console.log(`wrote ${path.relative(ROOT, gif)} (${(fs.statSync(gif).size / 1024).toFixed(0)} KiB)`);
fs.rmSync(dir, { recursive: true, force: true });
