import { parseArgs } from "node:util";
import { type FrameReport, framesFolder, stylizeVideo, type VideoOptions } from "../../api/video.js";
import { UsageError } from "../../errors.js";
import { checkWritable } from "../../fsutil/atomic.js";
import { assertImageFile } from "../../image/io.js";
import { checkOption } from "../../options/check.js";
import { DEFAULTS } from "../../options/defaults.js";
import { flagHelp, optionsFromFlags, parseArgsOptions, withFlagErrors } from "../options.js";
import { joinNegativeValues, valueFlags } from "../parse.js";
import { ProgressReporter } from "../progress.js";
import { exitCodeFor, withStopSignals } from "../signals.js";
import { weightsFor } from "../weights.js";

export const VIDEO_HELP = `Usage: stylegram video IN -o OUT --style S [--style S2 ...] [options]

Stylizes every frame of the video IN and writes OUT with IN's frame rate and audio
(through the system's ffmpeg). Each frame starts from the previous result, warped by
the optical flow of IN's frames, and is held to it where that flow is certain (the
temporal loss of Ruder, Dosovitskiy and Brox), so the picture does not flicker.

${flagHelp("video", ["output", "video", "optimisation", "colour", "objective", "runtime"])}

Examples:
  stylegram video clip.mp4 --style starry_night.jpg --size 480 -o starry.mp4
  stylegram video clip.mp4 --style scream.jpg --temporal-frames 1,2,4 -o scream.mkv   (long-term too; .mkv: lossless)
  stylegram video clip.mp4 --style scream.jpg --temporal-weight 0 -o flicker.mp4    (independent frames)

Finished frames are kept as PNGs in .OUT.frames beside OUT until the video is written:
Ctrl-C (or SIGTERM, a crash) stops, and the same command again resumes at the first
unfinished frame. At the end it prints the flicker: the mean warping error between
consecutive frames where the flow is certain (docs/video.md).`;

const VIDEO_FLAGS = { ...parseArgsOptions("video"), help: { type: "boolean", short: "h" } } as const;
export const VIDEO_FLAG_NAMES = Object.keys(VIDEO_FLAGS);

export async function videoCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(argv, valueFlags(VIDEO_FLAGS)),
    options: VIDEO_FLAGS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(`${VIDEO_HELP}\n`);
    return 0;
  }
  return withFlagErrors(values, () => run(values, positionals));
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

const number = (v: number | undefined, digits = 4) =>
  v === undefined || Number.isNaN(v) ? "-" : v.toPrecision(digits);

async function run(values: Values, positionals: string[]): Promise<number> {
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0
        ? "give the input video: stylegram video IN -o OUT --style S"
        : `give one input video (got ${positionals.length}: ${positionals.join(", ")}); for many pictures see 'stylegram batch'`,
    );
  const input = positionals[0] as string;
  const {
    output,
    force = false,
    printEvery,
    fetch,
    weights: weightsPath,
    styles,
    ...library
  } = optionsFromFlags("video", values) as {
    output?: string;
    force?: boolean;
    printEvery?: number;
    fetch?: boolean;
    weights?: string;
    styles?: string[];
  } & Omit<VideoOptions, "input" | "output" | "styles">;
  if (!output) throw new UsageError("give the output video with -o OUT (.mp4, .webm, or .mkv for lossless)");
  if (!styles || styles.length === 0)
    throw new UsageError("give a style image with --style FILE", { option: "styles" });
  if (printEvery !== undefined) checkOption("printEvery", printEvery);
  assertImageFile(input);
  for (const s of styles) assertImageFile(s);
  checkWritable(output, true);

  const progress = new ProgressReporter(process.stderr, printEvery ?? DEFAULTS.printEvery);
  const onFrame = (f: FrameReport) => {
    if (f.resumed) return;
    const of = f.frames === undefined ? "" : `/${f.frames}`;
    progress.line(
      `frame ${f.frame}${of}: style loss ${number(f.style)}${f.warpingError === undefined ? "" : `, warping error ${number(f.warpingError, 3)}`}`,
    );
  };
  const { value: result, stoppedBy } = await withStopSignals(
    (sig) => {
      progress.end();
      process.stderr.write(
        `stopping (${sig === "SIGINT" ? "Ctrl-C" : sig}): the finished frames are kept; the same command resumes (again to quit at once)\n`,
      );
    },
    async (signal) => {
      const weights = await weightsFor(weightsPath, fetch === true, signal);
      return stylizeVideo({
        ...library,
        input,
        output,
        styles,
        force,
        weights,
        signal,
        onStage: (s) => {
          if (s.stage === "notice") progress.line(`note: ${s.message}`);
        },
        onProgress: (p) => progress.update(p),
        onFrame,
      });
    },
  );
  progress.end();
  if (result.resumedFrames > 0 && !result.stopped)
    process.stderr.write(`resumed: ${result.resumedFrames} frames were finished by an earlier run\n`);
  if (result.stopped) {
    process.stderr.write(
      `stopped: ${result.frames} frames are finished and kept in ${framesFolder(output)}; run the same command to go on\n`,
    );
    return exitCodeFor(stoppedBy, 130);
  }
  process.stderr.write(
    `wrote ${output} (${result.frames} frames, ${result.width}x${result.height} at ${result.frameRate} fps, ${result.seconds.toFixed(1)} s)\n` +
      `flicker: mean warping error ${number(result.warpingError, 3)} (squared 0..255 levels, where the flow is certain); mean style loss ${number(result.styleLoss)}\n`,
  );
  return exitCodeFor(stoppedBy, 0);
}
