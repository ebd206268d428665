import fs from "node:fs";
import path from "node:path";
import { message, opt, StoppedBeforeStartError, StylegramError, UsageError } from "../errors.js";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { reserveOutput } from "../fsutil/results.js";
import type { RgbImage } from "../image/image.js";
import { encodeImage, loadImage } from "../image/io.js";
import { fitLongEdge } from "../image/size.js";
import { resolveWeights } from "../models/resolve.js";
import { meanWarpingError, type WarpingError, warpingError } from "../motion/flicker.js";
import { type FramePair, framePairs, frameTarget } from "../motion/temporal.js";
import { resolveObjective } from "../objective/options.js";
import { TargetCache } from "../objective/targets.js";
import { checkPresent, knownKeys, namesIn } from "../options/check.js";
import { DEFAULTS } from "../options/defaults.js";
import type { Progress, Stage, StylizeOptions } from "../stylize/options.js";
import { planScales, stylize } from "../stylize/stylize.js";
import { encodeVideo, probeVideo, readFrames, type VideoInfo } from "../video/ffmpeg.js";

/**
 * stylizeVideo(): a video's frames, each stylized from the one before (Ruder, Dosovitskiy and Brox,
 * "Artistic style transfer for videos"): the first as a picture; each later one starting from the
 * previous result warped by the optical flow, optimised with the temporal term that holds it to the
 * earlier results where the flow is certain, and with fewer iterations. Frames are read through
 * ffmpeg one at a time; each result is kept as a PNG in a folder beside the output, so that a run
 * that stops (a signal, a crash, a reboot) resumes at its first unfinished frame; the video is
 * written from them at the end, with the input's frame rate and audio, and the folder removed.
 */

export interface VideoOptions
  extends Omit<
    StylizeOptions,
    | "content"
    | "init"
    | "temporal"
    | "targetCache"
    | "onProgress"
    | "onSnapshot"
    | "snapshotEvery"
    | "masks"
    | "styleMasks"
  > {
  /** The video to stylize: any file ffmpeg reads. */
  input: string;
  /** The stylized video; its container from the extension (.mp4 H.264, .webm VP9, .mkv lossless FFV1). */
  output: string;
  /** The earlier frames each frame is held to (default [1]: the previous one). */
  temporalFrames?: readonly number[];
  /** Evaluations of each frame after the first (default a third of the first's last scale). */
  frameIterations?: number;
  /** Only the first N frames. */
  frames?: number;
  /** Start again, replacing the output and an unfinished run's frames, instead of resuming. */
  force?: boolean;
  onProgress?: (p: VideoProgress) => void;
  /** After each frame is saved. */
  onFrame?: (f: FrameReport) => void;
}

export interface VideoProgress extends Progress {
  frame: number;
  /** Frames of the run, when known. */
  frames: number | undefined;
}

export interface FrameReport {
  frame: number;
  frames: number | undefined;
  /** The style loss of the frame (the weighted style terms). */
  style: number;
  /** This frame's warping error against the previous one (undefined for the first). */
  warpingError?: number;
  /** Taken from an earlier run's folder, not stylized again. */
  resumed: boolean;
}

export interface VideoResult {
  frames: number;
  width: number;
  height: number;
  frameRate: string;
  /** Frames taken from an interrupted run. */
  resumedFrames: number;
  /** The mean warping error between consecutive output frames (0..255 levels squared), the flicker. */
  warpingError: number;
  /** The mean style loss over the frames stylized in this run. */
  styleLoss: number;
  seconds: number;
  /** True when a signal stopped it: the finished frames are kept for the next run. */
  stopped: boolean;
}

/** The keys of stylizeVideo()'s options. */
const VIDEO_KEYS = [
  ...namesIn("objective", "stylize", "runtime", "video").filter(
    (k) =>
      ![
        "content",
        "init",
        "temporal",
        "targetCache",
        "onSnapshot",
        "snapshotEvery",
        "masks",
        "styleMasks",
      ].includes(k),
  ),
  "input",
  "output",
  "force",
  "onFrame",
];

/** The containers stylegram writes (src/video/ffmpeg.ts picks each one's codec). */
export const VIDEO_EXTENSIONS = [".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif"];

/** The folder that holds a run's finished frames until the video is written. */
export function framesFolder(output: string): string {
  return path.join(path.dirname(path.resolve(output)), `.${path.basename(output)}.frames`);
}

const frameFile = (dir: string, i: number) => path.join(dir, `frame_${String(i).padStart(6, "0")}.png`);

/** Even sizes: H.264 and VP9 in yuv420p need them. */
const even = (n: number) => Math.max(2, 2 * Math.round(n / 2));

/** What decides the frames' pixels: a folder made with other settings is not resumed. */
function settingsOf(o: VideoOptions, info: VideoInfo, size: { width: number; height: number }): string {
  const { onProgress, onFrame, onStage, signal, weights, force, output, threads, device, ...rest } = o;
  void [onProgress, onFrame, onStage, signal, force, output, threads, device];
  return JSON.stringify({
    ...rest,
    input: path.resolve(o.input),
    weights: typeof weights === "string" ? path.resolve(weights) : undefined,
    size,
    rate: info.frameRate,
  });
}

/** How many frames, from the first, an earlier run finished. */
function finishedFrames(dir: string): number {
  let n = 0;
  while (fs.existsSync(frameFile(dir, n + 1))) n++;
  return n;
}

/** Opens the run's folder: resumes one made with the same settings, else refuses or (force) starts again. */
function openFolder(dir: string, settings: string, force: boolean): number {
  const state = path.join(dir, "run.json");
  if (fs.existsSync(dir)) {
    const same = fs.existsSync(state) && fs.readFileSync(state, "utf8") === settings;
    if (same && !force) return finishedFrames(dir);
    if (!force)
      throw new UsageError(
        message`${dir} holds the frames of an unfinished run with other settings: run that command again to finish it, or pass ${opt("force")} to start again`,
        { option: "force" },
      );
    fs.rmSync(dir, { recursive: true, force: true });
  }
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(state, new TextEncoder().encode(settings));
  return 0;
}

/** The weighted style loss of a result's terms. */
function styleLossOf(
  style: Record<string, number>,
  weights: readonly number[],
  layers: readonly string[],
): number {
  return layers.reduce((s, l, i) => s + (weights[i] as number) * (style[l] ?? 0), 0);
}

export function checkVideoOptions(o: VideoOptions): void {
  if (typeof o !== "object" || o === null) throw new UsageError("stylizeVideo() takes an options object");
  knownKeys("stylizeVideo()", o, VIDEO_KEYS);
  if (typeof o.input !== "string" || o.input === "")
    throw new UsageError("give the input video", { option: "input" });
  if (typeof o.output !== "string" || o.output === "")
    throw new UsageError("give the output video", { option: "output" });
  checkPresent(o as unknown as Record<string, unknown>, namesIn("objective", "stylize", "runtime", "video"));
  if (!VIDEO_EXTENSIONS.includes(path.extname(o.output).toLowerCase()))
    throw new UsageError(
      `give the output video one of the extensions ${VIDEO_EXTENSIONS.join(" ")} (it says the format), got ${o.output}`,
      { option: "output" },
    );
  if (path.resolve(o.input) === path.resolve(o.output))
    throw new UsageError(`refusing to write ${o.output}: it is the input video`, { option: "output" });
}

export async function stylizeVideo(o: VideoOptions): Promise<VideoResult> {
  checkVideoOptions(o);
  const started = performance.now();
  const stopped = () => o.signal?.aborted === true;
  const info = await probeVideo(o.input);
  const fitted = fitLongEdge(info, o.size ?? DEFAULTS.size);
  const size = { width: even(fitted.width), height: even(fitted.height) };
  const objective = resolveObjective(o, o.styles.length);
  const independent = objective.temporalWeight === 0;
  const js = [...(o.temporalFrames ?? [1])].sort((a, b) => a - b);
  if (!js.includes(1))
    throw new UsageError(
      message`${opt("temporalFrames")} must include 1: the previous frame starts each frame`,
      {
        option: "temporalFrames",
      },
    );
  const depth = js.at(-1) as number;

  // The first frame as a picture (coarse to fine when large); the others at the output size alone.
  const steps = planScales({ ...o, size: Math.max(size.width, size.height) });
  const firstIterations = steps.reduce((n, s) => n + s.iterations, 0);
  const later = independent
    ? firstIterations
    : (o.frameIterations ?? Math.max(1, Math.ceil((steps.at(-1)?.iterations ?? 1) / 3)));
  const total = Math.min(info.frames ?? Number.POSITIVE_INFINITY, o.frames ?? Number.POSITIVE_INFINITY);
  const frames = Number.isFinite(total) ? total : undefined;
  const evaluationsFor = (i: number) => (i === 1 ? firstIterations : later);

  if (fs.existsSync(o.output) && !o.force)
    throw new StylegramError(`${o.output} already exists: pass --force to overwrite it`, { exitCode: 2 });
  const release = reserveOutput(o.output);
  try {
    const dir = framesFolder(o.output);
    const done = openFolder(dir, settingsOf(o, info, size), o.force === true);
    o.onStage?.({ stage: "weights" });
    const weights = await resolveWeights(o.weights);
    const cache = new TargetCache();
    const inputs = new Map<number, RgbImage>();
    const outputs = new Map<number, RgbImage>();
    const errors: WarpingError[] = [];
    let styleSum = 0;
    let stylized = 0;
    let evaluations = 0;
    let remaining = frames === undefined ? Number.NaN : 0;
    if (frames !== undefined) for (let i = done + 1; i <= frames; i++) remaining += evaluationsFor(i);
    let count = 0;
    let aborted = false;
    for await (const frame of readFrames(o.input, size, o.frames)) {
      const i = ++count;
      // The ring of recent frames: this one and `depth` before it, by distance.
      const earlierInputs = new Map([...inputs].map(([k, v]) => [i - k, v]));
      const earlierOutputs = new Map([...outputs].map(([k, v]) => [i - k, v]));
      const keep = (m: Map<number, RgbImage>, img: RgbImage) => {
        m.set(i, img);
        m.delete(i - depth);
      };
      if (i <= done) {
        keep(inputs, frame);
        keep(outputs, await loadImage(frameFile(dir, i), { exact: size }));
        o.onFrame?.({ frame: i, frames, style: Number.NaN, resumed: true });
        continue;
      }
      if (stopped()) {
        aborted = true;
        break;
      }
      // Flows on the input frames, each pair once; with independent frames only for the measure.
      const pairs: FramePair[] = await framePairs(frame, earlierInputs, independent ? [1] : js);
      const target = await frameTarget(frame, pairs, earlierOutputs);
      const its = evaluationsFor(i);
      let result: Awaited<ReturnType<typeof stylize>>;
      try {
        result = await stylize({
          ...withoutVideoKeys(o),
          content: frame,
          weights,
          targetCache: cache,
          ...(i === 1 || independent || !target
            ? { scales: steps.map((s) => s.size), iterations: steps.map((s) => s.iterations) }
            : {
                scales: [Math.max(size.width, size.height)],
                iterations: its,
                init: { image: target.init },
                temporal: target.temporal,
              }),
          ...(o.onStage ? { onStage: (s: Stage) => i === 1 && o.onStage?.(s) } : {}),
          onProgress: (p) => {
            const doneNow = evaluations + p.iteration;
            const elapsed = (performance.now() - started) / 1000;
            o.onProgress?.({
              ...p,
              iteration: doneNow,
              iterations: frames === undefined ? Number.NaN : evaluations + remaining,
              seconds: elapsed,
              // The whole run's time per evaluation (each frame's set-up included), times what is left.
              etaSeconds: frames === undefined ? Number.NaN : (elapsed / doneNow) * (remaining - p.iteration),
              frame: i,
              frames,
            });
          },
        });
      } catch (e) {
        if (e instanceof StoppedBeforeStartError) {
          aborted = true;
          break;
        }
        throw e;
      }
      // A frame stopped part way is not finished: the next run makes it again.
      if (result.reason === "aborted") {
        aborted = true;
        break;
      }
      writeFileAtomic(frameFile(dir, i), await encodeImage(result.image, "png"));
      evaluations += its;
      remaining -= its;
      keep(inputs, frame);
      keep(outputs, result.image);
      const style = styleLossOf(result.loss.style, objective.styleLayerWeights, objective.styleLayers);
      styleSum += style;
      stylized++;
      let error: number | undefined;
      if (target) {
        const e = warpingError(result.image, target.previous.warped, target.previous.certainty.certain);
        errors.push(e);
        error = e.weight > 0 ? e.sum / e.weight : undefined;
      }
      o.onFrame?.({
        frame: i,
        frames,
        style,
        ...(error === undefined ? {} : { warpingError: error }),
        resumed: false,
      });
    }
    const result = {
      frames: count,
      ...size,
      frameRate: info.frameRate,
      resumedFrames: Math.min(done, count),
      warpingError: meanWarpingError(errors),
      styleLoss: stylized > 0 ? styleSum / stylized : Number.NaN,
      seconds: (performance.now() - started) / 1000,
    };
    if (aborted || stopped()) return { ...result, frames: Math.max(done, count - 1), stopped: true };
    if (count === 0) throw new StylegramError(`${o.input} has no frames to stylize`);
    // The video from the frames on disk, written beside the output and renamed over it when complete.
    const partial = path.join(
      path.dirname(path.resolve(o.output)),
      `.${path.basename(o.output, path.extname(o.output))}.partial${path.extname(o.output)}`,
    );
    async function* saved(): AsyncGenerator<RgbImage> {
      for (let i = 1; i <= count; i++) yield await loadImage(frameFile(dir, i), { exact: size });
    }
    try {
      await encodeVideo(partial, saved(), { ...size, frameRate: info.frameRate, audioFrom: o.input });
      fs.renameSync(partial, o.output);
    } finally {
      fs.rmSync(partial, { force: true });
    }
    fs.rmSync(dir, { recursive: true, force: true });
    return { ...result, stopped: false };
  } finally {
    release();
  }
}

/** stylize()'s options among the video's. */
function withoutVideoKeys(o: VideoOptions): Omit<StylizeOptions, "content"> {
  const { input, output, temporalFrames, frameIterations, frames, force, onProgress, onFrame, ...rest } = o;
  void [input, output, temporalFrames, frameIterations, frames, force, onProgress, onFrame];
  return rest;
}
