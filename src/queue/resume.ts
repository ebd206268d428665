import type { JobOptions } from "../server/options.js";
import type { WorkerInput } from "../server/worker-protocol.js";
import type { ScaleStep } from "../stylize/scales.js";

/** Where a checkpoint left a job: its global iteration and scale (1-based), and the seconds spent. */
export interface CheckpointAt {
  iteration: number;
  scale: number;
  seconds: number;
}

/**
 * The options of the rest of a job resumed from a checkpoint, and what its reports are offset by
 * (job-worker.ts adds it): the scales not yet done, the first of them with the iterations it has
 * left, starting from the checkpoint's picture (given as `init` by the caller; it has that scale's
 * size). What is not kept: L-BFGS' history (or Adam's moments), rebuilt over the next steps, and the
 * picture's fraction below 1/255 (a checkpoint is 8-bit). A checkpoint at the very end of a scale
 * resumes with that scale's last iteration, so that the next scale starts from the same picture
 * stylize() would have upsampled.
 */
export function resumePlan(
  options: JobOptions,
  steps: readonly ScaleStep[],
  at: CheckpointAt,
): { options: JobOptions; offset: NonNullable<WorkerInput["offset"]> } {
  const k = Math.min(Math.max(1, at.scale), steps.length) - 1;
  const step = steps[k] as ScaleStep;
  const before = steps.slice(0, k).reduce((n, s) => n + s.iterations, 0);
  const doneHere = Math.max(0, Math.min(at.iteration - before, step.iterations - 1));
  const rest: ScaleStep[] = [
    { size: step.size, iterations: step.iterations - doneHere },
    ...steps.slice(k + 1),
  ];
  return {
    options: {
      ...options,
      size: (rest.at(-1) as ScaleStep).size,
      scales: rest.map((s) => s.size),
      iterations: rest.map((s) => s.iterations),
    },
    offset: { iteration: before + doneHere, seconds: at.seconds, scale: k },
  };
}
