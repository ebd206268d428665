import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { StylegramError } from "../errors.js";
import type { RgbImage } from "../image/image.js";

/**
 * Video in and out through the system's ffmpeg, raw RGB frames on its pipes: any format ffmpeg reads,
 * frames streamed one at a time (never the whole video in memory), the frame rate and the audio kept.
 */

/** How to install ffmpeg here, for the error that says it is missing. */
export function ffmpegInstallHint(platform: NodeJS.Platform = process.platform): string {
  if (platform === "darwin") return "brew install ffmpeg";
  if (platform === "win32") return "winget install ffmpeg (or choco install ffmpeg)";
  return "apt-get install ffmpeg on Debian and Ubuntu, dnf install ffmpeg on Fedora, pacman -S ffmpeg on Arch";
}

/** ffmpeg or ffprobe is not on the PATH. */
export class FfmpegMissingError extends StylegramError {
  override readonly name: string = "FfmpegMissingError";
  constructor(tool: string) {
    super(
      `video needs ${tool}, from ffmpeg, and there is no ${tool} on the PATH: install it (${ffmpegInstallHint()}) and run again`,
    );
  }
}

/** Spawns a tool of ffmpeg's, turning a missing program into FfmpegMissingError. */
function start(tool: "ffmpeg" | "ffprobe", args: string[]): { child: ChildProcess; done: Promise<string> } {
  const child = spawn(tool, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (s: string) => {
    // The last lines say what went wrong; a long log is cut.
    stderr = (stderr + s).slice(-4000);
  });
  const done = new Promise<string>((resolve, reject) => {
    child.once("error", (e) => {
      reject((e as { code?: string }).code === "ENOENT" ? new FfmpegMissingError(tool) : e);
    });
    child.once("close", (code, signal) => {
      if (code === 0) resolve(stderr);
      else
        reject(
          Object.assign(new Error(stderr.trim() || `${tool} stopped (${signal ?? `exit code ${code}`})`), {
            exitCode: code,
          }),
        );
    });
  });
  return { child, done };
}

export interface VideoInfo {
  /** The frames' size as shown (a rotation in the file's metadata applied). */
  width: number;
  height: number;
  /** Frames per second as ffmpeg states it ("30000/1001"), and as a number. */
  frameRate: string;
  fps: number;
  /** The number of frames, when the file says it or its duration gives it. */
  frames?: number;
  hasAudio: boolean;
}

interface ProbeStream {
  codec_type?: string;
  width?: number;
  height?: number;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
  tags?: { rotate?: string };
  side_data_list?: { rotation?: number }[];
}

const rate = (r: string | undefined) => {
  const [n, d = "1"] = (r ?? "").split("/");
  const v = Number(n) / Number(d);
  return Number.isFinite(v) && v > 0 ? v : undefined;
};

/** What a video file holds: its size, rate, length and whether it has sound. */
export async function probeVideo(file: string): Promise<VideoInfo> {
  const { child, done } = start("ffprobe", [
    "-v",
    "error",
    "-print_format",
    "json",
    "-show_streams",
    "-show_format",
    file,
  ]);
  let json = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (s: string) => {
    json += s;
  });
  try {
    await done;
  } catch (e) {
    if (e instanceof FfmpegMissingError) throw e;
    throw new StylegramError(`cannot read ${file} as a video: ${(e as Error).message}`, { cause: e });
  }
  const info = JSON.parse(json) as { streams?: ProbeStream[]; format?: { duration?: string } };
  const video = info.streams?.find((s) => s.codec_type === "video");
  if (!video?.width || !video.height)
    throw new StylegramError(`${file} has no video stream: give a video file (.mp4, .mkv, .webm, .mov, ...)`);
  const rotation = Math.abs(
    Number(video.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? video.tags?.rotate ?? 0),
  );
  const turned = rotation % 180 === 90;
  const frameRate =
    rate(video.r_frame_rate) !== undefined
      ? (video.r_frame_rate as string)
      : (video.avg_frame_rate ?? "25/1");
  const fps = rate(frameRate) ?? 25;
  const duration = Number(video.duration ?? info.format?.duration);
  const counted = Number(video.nb_frames);
  const frames =
    Number.isInteger(counted) && counted > 0
      ? counted
      : Number.isFinite(duration) && duration > 0
        ? Math.round(duration * fps)
        : undefined;
  return {
    width: turned ? video.height : video.width,
    height: turned ? video.width : video.height,
    frameRate,
    fps,
    ...(frames === undefined ? {} : { frames }),
    hasAudio: info.streams?.some((s) => s.codec_type === "audio") ?? false,
  };
}

/**
 * The frames of a video, decoded by ffmpeg and scaled to width x height, one at a time, as they
 * come; at most `limit` of them. Ending the loop early stops ffmpeg.
 */
export async function* readFrames(
  file: string,
  size: { width: number; height: number },
  limit?: number,
): AsyncGenerator<RgbImage> {
  const { width, height } = size;
  const { child, done } = start("ffmpeg", [
    "-v",
    "error",
    "-nostdin",
    "-i",
    file,
    "-map",
    "0:v:0",
    ...(limit === undefined ? [] : ["-frames:v", String(limit)]),
    "-vf",
    `scale=${width}:${height}:flags=area`,
    "-fps_mode",
    "passthrough",
    "-f",
    "rawvideo",
    "-pix_fmt",
    "rgb24",
    "pipe:1",
  ]);
  done.catch(() => undefined);
  const bytes = width * height * 3;
  let pending: Buffer[] = [];
  let have = 0;
  let finished = false;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      pending.push(chunk);
      have += chunk.length;
      while (have >= bytes) {
        const all = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
        yield { width, height, data: new Uint8Array(all.subarray(0, bytes)) };
        const rest = all.subarray(bytes);
        pending = rest.length > 0 ? [Buffer.from(rest)] : [];
        have = rest.length;
      }
    }
    finished = true;
    try {
      await done;
    } catch (e) {
      if (e instanceof FfmpegMissingError) throw e;
      throw new StylegramError(`cannot decode ${file}: ${(e as Error).message}`, { cause: e });
    }
  } finally {
    if (!finished) child.kill("SIGKILL");
  }
}

/** Encoder settings by the output's extension: widely playable H.264, VP9, or lossless FFV1 in .mkv. */
function encoderArgs(output: string): string[] {
  switch (path.extname(output).toLowerCase()) {
    case ".mp4":
    case ".mov":
    case ".m4v":
      return ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "17", "-movflags", "+faststart"];
    case ".webm":
      return ["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-crf", "24", "-b:v", "0"];
    case ".mkv":
      return ["-c:v", "ffv1", "-pix_fmt", "bgr0"];
    default:
      return [];
  }
}

export interface EncodeOptions {
  width: number;
  height: number;
  frameRate: string;
  /** A video whose audio goes with the frames (cut at their end), copied where the container is the same. */
  audioFrom?: string;
}

/**
 * Writes frames into a video file with ffmpeg, at the given rate, with the audio of another file.
 * Frames are written as they come, waiting for ffmpeg to take each.
 */
export async function encodeVideo(
  output: string,
  frames: AsyncIterable<RgbImage>,
  options: EncodeOptions,
): Promise<void> {
  const { width, height, frameRate, audioFrom } = options;
  const sameContainer = audioFrom !== undefined && path.extname(audioFrom) === path.extname(output);
  const { child, done } = start("ffmpeg", [
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
    frameRate,
    "-i",
    "pipe:0",
    ...(audioFrom === undefined
      ? []
      : [
          "-i",
          audioFrom,
          "-map",
          "0:v:0",
          "-map",
          "1:a?",
          ...(sameContainer ? ["-c:a", "copy"] : []),
          "-shortest",
        ]),
    ...encoderArgs(output),
    output,
  ]);
  const stdin = child.stdin as NodeJS.WritableStream;
  // A write after ffmpeg has stopped fails with EPIPE; its own error says why it stopped.
  stdin.on("error", () => undefined);
  try {
    for await (const f of frames) {
      if (f.width !== width || f.height !== height)
        throw new Error(`a ${f.width}x${f.height} frame for a ${width}x${height} video`);
      if (!stdin.write(f.data)) await Promise.race([new Promise((r) => stdin.once("drain", r)), done]);
    }
    stdin.end();
    await done;
  } catch (e) {
    child.kill("SIGKILL");
    await done.catch(() => undefined);
    if (e instanceof StylegramError) throw e;
    throw new StylegramError(`cannot write ${output} with ffmpeg: ${(e as Error).message}`, { cause: e });
  }
}
