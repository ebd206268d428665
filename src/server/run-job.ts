import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { StylegramError } from "../errors.js";
import { writeFileAtomic } from "../fsutil/atomic.js";
import type { RgbImage } from "../image/image.js";
import { encodeImage } from "../image/io.js";
import type { VggWeights } from "../network/weights.js";
import { stylize } from "../stylize/stylize.js";
import type { Job } from "./jobs.js";
import { withUploadNames } from "./uploads.js";

export interface RunContext {
  weights: VggWeights;
  /** Compute threads of one job: the cores shared among the jobs that run at once. */
  threads: number;
  /** At least this long between two preview frames, so that fast small runs do not flood the pages. */
  frameMs: number;
  /** Where unexpected errors are reported (the server's log). */
  logError: (e: unknown, job: Job) => void;
  /** Where a job's failure (the message its page shows) is reported. */
  logFailure: (message: string, job: Job) => void;
}

/** Long edge of a preview frame: enough for a page, small enough to send every second. */
const PREVIEW_EDGE = 640;

/** A small JPEG of the picture so far, for the live preview. */
export async function encodePreview(img: RgbImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(PREVIEW_EDGE, PREVIEW_EDGE, { fit: "inside", withoutEnlargement: true })
    .jpeg({ quality: 80 })
    .toBuffer();
}

/** The uploads are not needed once the job has ended, whatever the ending. */
export function removeUploads(job: Job): void {
  for (const u of [job.spec.content, ...job.spec.styles]) fs.rmSync(u.file, { force: true });
}

/**
 * Runs one job with the library's stylize(), in the library's option names:
 * its progress, a preview frame at most every `frameMs`, the result as a PNG in
 * the job's folder. A failure (an unreadable image, a diverging loss, memory)
 * ends the job with the library's message. A cancel aborts stylize(), which
 * returns its best picture so far once it has run an iteration (as the CLI's
 * Ctrl-C keeps it): that picture is the cancelled job's result.
 */
export async function runJob(job: Job, ctx: RunContext): Promise<void> {
  const { signal } = job.controller;
  let lastFrame = Number.NEGATIVE_INFINITY;
  try {
    const result = await stylize({
      ...job.spec.options,
      content: job.spec.content.file,
      styles: job.spec.styles.map((s) => s.file),
      weights: ctx.weights,
      threads: ctx.threads,
      signal,
      onStage: (s) => job.onStage(s),
      // Offered every iteration, taken at most every frameMs; the next progress event carries its URL.
      snapshotEvery: 1,
      onSnapshot: async (img, iteration) => {
        const now = performance.now();
        if (now - lastFrame < ctx.frameMs && iteration < job.spec.iterations) return;
        lastFrame = now;
        job.setPreview(await encodePreview(img));
      },
      onProgress: (p) => job.onProgress(p),
    });
    const png = await encodeImage(result.image, "png");
    // From here to the job's end nothing awaits, so a DELETE cannot come between the
    // file and the ending: whatever the job says it has, it has.
    const file = path.join(job.dir, "result.png");
    writeFileAtomic(file, png);
    job.end(result.reason === "aborted" ? "cancelled" : "done", {
      result: { file, width: result.image.width, height: result.image.height },
      iterations: result.iterations,
      loss: result.loss.total,
      elapsed: result.seconds,
    });
  } catch (e) {
    if (signal.aborted) job.end("cancelled");
    else if (e instanceof StylegramError) {
      const message = withUploadNames(e.message, [job.spec.content, ...job.spec.styles]);
      ctx.logFailure(message, job);
      job.end("failed", { error: message });
    } else {
      ctx.logError(e, job);
      job.end("failed", {
        error: `internal error: ${(e as Error).message ?? String(e)} (a bug: the server's log has the details)`,
      });
    }
  } finally {
    removeUploads(job);
  }
}
