/**
 * Jobs' stylize(), in a process of their own (run-job.ts forks it):
 * onnxruntime-node runs an evaluation synchronously, so on the server's thread
 * every evaluation (seconds at 512 px, minutes at 4096) would hold up every
 * request and a stop. A worker thread would free the thread but cannot be
 * ended in the middle of an evaluation (onnxruntime aborts the whole process),
 * nor survive a job that runs out of memory; a process can be killed, and dies
 * alone. It runs one job at a time, told by messages, tells the server what
 * happens by messages, and stops at the job's next step on "abort".
 */
import sharp from "sharp";
import { StylegramError } from "../errors.js";
import type { RgbImage } from "../image/image.js";
import { encodeImage } from "../image/io.js";
import type { VggWeights } from "../network/weights.js";
import { stylize } from "../stylize/stylize.js";
import type { WorkerInput, WorkerMessage } from "./worker-protocol.js";

/** Long edge of a preview frame: enough for a page, small enough to send every second. */
const PREVIEW_EDGE = 640;

/** A small JPEG of the picture so far, for the live preview. */
async function encodePreview(img: RgbImage): Promise<Uint8Array> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(PREVIEW_EDGE, PREVIEW_EDGE, { fit: "inside", withoutEnlargement: true })
    .jpeg({ quality: 80 })
    .toBuffer();
}

const send = process.send?.bind(process);
if (!send) throw new Error("job-worker.ts runs as a process that run-job.ts forks");
const post = (m: WorkerMessage): void => {
  send(m);
};
/** Sent first, once: the weights, which this process keeps for every job. */
let weights: VggWeights | undefined;
let controller: AbortController | undefined;

async function run(input: WorkerInput): Promise<void> {
  controller = new AbortController();
  const { signal } = controller;
  let lastFrame = Number.NEGATIVE_INFINITY;
  // A resumed run counts on from its checkpoint.
  const offset = input.offset ?? { iteration: 0, seconds: 0, scale: 0 };
  let scale = offset.scale + 1;
  let lastCheckpoint = performance.now();
  const checkpoint = (image: RgbImage, iteration: number, seconds: number) =>
    post({ type: "checkpoint", checkpoint: { image, iteration, scale, seconds } });
  let seconds = offset.seconds;
  try {
    const result = await stylize({
      ...input.options,
      content: input.content,
      styles: input.styles,
      weights: weights as VggWeights,
      threads: input.threads,
      signal,
      onStage: (stage) => post({ type: "stage", stage }),
      // Offered every iteration, taken at most every frameMs; the next progress event carries its URL.
      snapshotEvery: 1,
      onSnapshot: async (img, local) => {
        const iteration = offset.iteration + local;
        const now = performance.now();
        if (
          input.checkpointMs !== undefined &&
          now - lastCheckpoint >= input.checkpointMs &&
          iteration < input.iterations
        ) {
          lastCheckpoint = now;
          checkpoint(img, iteration, seconds);
        }
        if (now - lastFrame < input.frameMs && iteration < input.iterations) return;
        lastFrame = now;
        post({ type: "preview", bytes: await encodePreview(img) });
      },
      onProgress: (p) => {
        scale = offset.scale + p.scale;
        seconds = offset.seconds + p.seconds;
        post({
          type: "progress",
          progress: input.offset
            ? {
                ...p,
                iteration: offset.iteration + p.iteration,
                iterations: input.iterations,
                seconds,
                scale,
                scales: offset.scale + p.scales,
              }
            : p,
        });
      },
    });
    const iterations = offset.iteration + result.iterations;
    // Stopped early (a cancel, or a worker handing its job back): the best picture is where to resume.
    if (result.reason === "aborted" && input.checkpointMs !== undefined && iterations < input.iterations)
      checkpoint(result.image, iterations, offset.seconds + result.seconds);
    const png = await encodeImage(result.image, "png");
    post({
      type: "result",
      png,
      width: result.image.width,
      height: result.image.height,
      iterations,
      loss: result.loss.total,
      seconds: offset.seconds + result.seconds,
      stoppedEarly: result.reason === "aborted",
    });
  } catch (e) {
    const error = e as Error;
    post({
      type: "error",
      expected: e instanceof StylegramError,
      message: error.message ?? String(e),
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    });
  } finally {
    controller = undefined;
    post({ type: "finished" });
  }
}

process.on(
  "message",
  (m: "abort" | { type: "weights"; weights: VggWeights } | { type: "run"; input: WorkerInput }) => {
    if (m === "abort") controller?.abort(new Error("cancelled"));
    else if (m.type === "weights") weights = m.weights;
    else void run(m.input);
  },
);
// The server is gone (killed): so is the reason to be.
process.on("disconnect", () => process.exit(0));
