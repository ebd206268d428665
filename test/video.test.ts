/**
 * stylegram video: a self-made clip of known motion through the CLI and ffmpeg; temporal
 * consistency against independent frames, the frame rate and audio kept, resume, ffmpeg missing.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { framesFolder } from "../src/api/video.js";
import { ffmpegInstallHint } from "../src/video/ffmpeg.js";
import { startCli } from "./support/child.js";
import { looksLikeCleanError, runCli, runCliAsync } from "./support/cli.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";
import { type Clip, decodeFrames, knownMotionError, needsFfmpeg, pannedClip } from "./support/video.js";

const STYLE = path.join(IMAGES_DIR, "starry_night.jpg");
const env = { STYLEGRAM_WEIGHTS: WEIGHTS_DIR };

function probe(file: string): {
  rate: string;
  frames: number;
  audio: boolean;
  width: number;
  height: number;
} {
  const r = spawnSync(
    "ffprobe",
    ["-v", "error", "-print_format", "json", "-show_streams", "-count_frames", file],
    {
      encoding: "utf8",
    },
  );
  const streams = (JSON.parse(r.stdout) as { streams: Record<string, string | number>[] }).streams;
  const v = streams.find((s) => s.codec_type === "video") as Record<string, string | number>;
  return {
    rate: String(v.r_frame_rate),
    frames: Number(v.nb_read_frames),
    audio: streams.some((s) => s.codec_type === "audio"),
    width: Number(v.width),
    height: Number(v.height),
  };
}

describe("stylegram video", { ...needsShared(), ...needsFfmpeg() }, () => {
  let dir: string;
  let clip: Clip;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-video-"));
    clip = await pannedClip(path.join(dir, "pan.mkv"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  // Few iterations, so that the suite stays within CI's time: enough for the styles to take hold.
  const common = ["--size", "96", "--iterations", "12", "--frame-iterations", "4", "--threads", "2"];

  test("a 16-frame pan at 96 px: 16 frames at the input's rate with its audio; the temporal loss at least halves the warping error against independent frames, the style loss within 10%", async () => {
    const consistent = path.join(dir, "consistent.mkv");
    const independent = path.join(dir, "independent.mkv");
    const a = await runCliAsync(["video", clip.file, "--style", STYLE, "-o", consistent, ...common], env);
    assert.equal(a.code, 0, a.stderr);
    const b = await runCliAsync(
      ["video", clip.file, "--style", STYLE, "-o", independent, ...common, "--temporal-weight", "0"],
      env,
    );
    assert.equal(b.code, 0, b.stderr);
    for (const file of [consistent, independent]) {
      const p = probe(file);
      assert.deepEqual(p, { rate: "12/1", frames: 16, audio: true, width: 96, height: 64 }, file);
    }
    assert.ok(
      !fs.existsSync(framesFolder(consistent)),
      "the frames' folder is removed once the video is written",
    );
    const error = (file: string) => knownMotionError(decodeFrames(file, 96, 64), 96, 64, clip.step);
    const [withLoss, without] = [error(consistent), error(independent)];
    assert.ok(
      withLoss <= without / 2,
      `warping error ${withLoss} with the temporal loss, ${without} without`,
    );
    // The run's own measure (with the flow) says the same, and both runs report their style loss.
    const reported = (s: string) => {
      const m = /mean warping error ([\d.e+-]+).*mean style loss ([\d.e+-]+)/.exec(s);
      assert.ok(m, s);
      return { warping: Number(m[1]), style: Number(m[2]) };
    };
    const [ra, rb] = [reported(a.stderr), reported(b.stderr)];
    assert.ok(ra.warping <= rb.warping / 2, `reported ${ra.warping} vs ${rb.warping}`);
    assert.ok(Math.abs(ra.style - rb.style) <= 0.1 * rb.style, `style loss ${ra.style} vs ${rb.style}`);
    assert.match(a.stderr, /frame 16\/16: style loss/);
  });

  test("killed part way, the same command resumes at the first unfinished frame", async () => {
    const out = path.join(dir, "resumed.mp4");
    const args = ["video", clip.file, "--style", STYLE, "-o", out, ...common, "--frames", "6"];
    const first = startCli(args, env);
    const frames = framesFolder(out);
    // Killed outright (no chance to clean up) once two frames are finished.
    await first.waitFor(/frame 2\/6: style loss/);
    first.child.kill("SIGKILL");
    await first.done;
    const kept = fs.readdirSync(frames).filter((f) => f.endsWith(".png"));
    assert.ok(kept.length >= 2 && kept.length < 6, `${kept.length} frames kept`);
    const stamp = fs.statSync(path.join(frames, "frame_000001.png")).mtimeMs;
    assert.ok(!fs.existsSync(out));
    const second = await runCliAsync(args, env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, new RegExp(`resumed: ${kept.length} frames were finished by an earlier run`));
    assert.doesNotMatch(second.stderr, /frame 1\/6: style loss/, "the finished frames are not made again");
    const p = probe(out);
    assert.equal(p.frames, 6);
    assert.equal(p.rate, "12/1");
    assert.ok(p.audio);
    assert.ok(stamp > 0);
    // Another run with other settings over an unfinished folder is refused, not mixed in.
    fs.mkdirSync(framesFolder(path.join(dir, "other.mp4")));
    fs.writeFileSync(path.join(framesFolder(path.join(dir, "other.mp4")), "run.json"), "{}");
    const refused = runCli(
      ["video", clip.file, "--style", STYLE, "-o", path.join(dir, "other.mp4"), ...common],
      env,
    );
    assert.ok(looksLikeCleanError(refused), refused.stderr);
    assert.match(refused.stderr, /unfinished run with other settings: .*--force to start again/);
  });

  test("bad uses are clean errors that name the fix", () => {
    const out = path.join(dir, "x.mp4");
    const notVideo = path.join(dir, "not-a-video.mp4");
    fs.writeFileSync(notVideo, "just text");
    const cases: [string[], RegExp][] = [
      [["video", clip.file, "-o", out], /give a style image with --style FILE/],
      [["video", "--style", STYLE, "-o", out], /give the input video/],
      [["video", clip.file, "--style", STYLE], /give the output video with -o OUT/],
      [
        ["video", clip.file, "--style", STYLE, "-o", out, "--temporal-weight", "-1"],
        /--temporal-weight must be a finite number >= 0, got "-1"/,
      ],
      [
        ["video", clip.file, "--style", STYLE, "-o", out, "--temporal-frames", "2,4"],
        /--temporal-frames must include 1/,
      ],
      [
        ["video", clip.file, "--style", STYLE, "-o", path.join(dir, "x.png")],
        /give the output video one of the extensions \.mp4 .* got .*x\.png/,
      ],
      [["video", notVideo, "--style", STYLE, "-o", out], /cannot read .*not-a-video\.mp4 as a video: /],
    ];
    for (const [args, pattern] of cases) {
      const r = runCli(args, env);
      assert.ok(looksLikeCleanError(r), `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
  });
});

describe("ffmpeg missing", needsShared(), () => {
  test("a clear error that names the install command, before any work", () => {
    // A PATH with node alone on it.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-nopath-"));
    fs.symlinkSync(process.execPath, path.join(bin, "node"));
    try {
      const video = path.join(bin, "in.mp4");
      fs.writeFileSync(video, "not read: ffprobe is missing");
      const r = runCli(["video", video, "--style", STYLE, "-o", path.join(bin, "out.mp4")], {
        ...env,
        PATH: bin,
      });
      assert.ok(looksLikeCleanError(r), r.stderr);
      assert.match(
        r.stderr,
        /video needs ffprobe, from ffmpeg, and there is no ffprobe on the PATH: install it \(apt-get install ffmpeg/,
      );
      assert.ok(!fs.existsSync(path.join(bin, "out.mp4")));
      assert.match(ffmpegInstallHint("darwin"), /brew install ffmpeg/);
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });
});
