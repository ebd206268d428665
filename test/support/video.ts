import { spawnSync } from "node:child_process";
import path from "node:path";
import sharp from "sharp";
import { IMAGES_DIR } from "./shared.js";

/** Whether ffmpeg and ffprobe are on the PATH. */
export function hasFfmpeg(): boolean {
  return ["ffmpeg", "ffprobe"].every((t) => spawnSync(t, ["-version"], { stdio: "ignore" }).status === 0);
}

/**
 * Options for a test that needs ffmpeg: skipped on a developer's machine without it, a failure
 * under CI=true (.ci/run installs it).
 */
export function needsFfmpeg(): { skip?: string } {
  if (hasFfmpeg()) return {};
  if (process.env.CI === "true")
    throw new Error("CI=true but ffmpeg is missing: .ci/run installs Debian's ffmpeg");
  return { skip: "no ffmpeg on the PATH" };
}

export interface Clip {
  file: string;
  width: number;
  height: number;
  frames: number;
  /** Pixels the picture moves left per frame. */
  step: number;
  fps: number;
}

/**
 * A self-made clip of known motion: a window over a photo panned `step` px right per frame (so the
 * picture moves `step` px left), encoded losslessly (FFV1 in .mkv) with a tone for audio.
 */
export async function pannedClip(
  file: string,
  o: { width?: number; height?: number; frames?: number; step?: number; fps?: number; photo?: string } = {},
): Promise<Clip> {
  const { width = 96, height = 64, frames = 16, step = 2, fps = 12 } = o;
  const photo = path.join(IMAGES_DIR, o.photo ?? "tubingen.jpg");
  const wide = width + step * (frames - 1);
  const { data } = await sharp(photo)
    .resize(wide, height, { fit: "cover" })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = Buffer.alloc(frames * width * height * 3);
  for (let t = 0; t < frames; t++)
    for (let y = 0; y < height; y++)
      data.copy(
        raw,
        (t * height + y) * width * 3,
        (y * wide + t * step) * 3,
        (y * wide + t * step + width) * 3,
      );
  const r = spawnSync(
    "ffmpeg",
    [
      "-v",
      "error",
      "-y",
      "-f",
      "rawvideo",
      "-pix_fmt",
      "rgb24",
      "-s",
      `${width}x${height}`,
      "-framerate",
      String(fps),
      "-i",
      "pipe:0",
      "-f",
      "lavfi",
      "-i",
      `sine=frequency=440:duration=${frames / fps}`,
      "-c:v",
      "ffv1",
      "-pix_fmt",
      "bgr0",
      "-c:a",
      "flac",
      "-shortest",
      file,
    ],
    { input: raw },
  );
  if (r.status !== 0) throw new Error(`ffmpeg could not make the clip: ${r.stderr}`);
  return { file, width, height, frames, step, fps };
}

/** Every frame of a video as raw RGB, decoded by ffmpeg. */
export function decodeFrames(file: string, width: number, height: number): Uint8Array[] {
  const r = spawnSync(
    "ffmpeg",
    ["-v", "error", "-i", file, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
    {
      maxBuffer: 1 << 30,
    },
  );
  if (r.status !== 0) throw new Error(`ffmpeg could not decode ${file}: ${r.stderr}`);
  const size = width * height * 3;
  return Array.from(
    { length: r.stdout.length / size },
    (_, t) => new Uint8Array(r.stdout.subarray(t * size, (t + 1) * size)),
  );
}

/**
 * The warping error of a panned clip's frames with the known motion: frame t+1 at (x, y) against
 * frame t at (x + step, y), over the pixels both show; the mean squared difference in 0..255 levels.
 */
export function knownMotionError(
  frames: readonly Uint8Array[],
  width: number,
  height: number,
  step: number,
): number {
  let sum = 0;
  let n = 0;
  for (let t = 0; t + 1 < frames.length; t++) {
    const a = frames[t] as Uint8Array;
    const b = frames[t + 1] as Uint8Array;
    for (let y = 0; y < height; y++)
      for (let x = 0; x + step < width; x++)
        for (let k = 0; k < 3; k++) {
          const d = (b[3 * (y * width + x) + k] as number) - (a[3 * (y * width + x + step) + k] as number);
          sum += d * d;
          n++;
        }
  }
  return sum / n;
}
