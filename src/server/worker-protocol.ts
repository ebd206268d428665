import type { RgbImage } from "../image/image.js";
import type { Progress, Stage } from "../stylize/options.js";
import type { JobOptions } from "./options.js";

/** One job for a worker process: `{ type: "run", input }` (after `{ type: "weights" }`, once); `"abort"` stops it at its next step. */
export interface WorkerInput {
  options: JobOptions;
  content: string;
  styles: string[];
  threads: number;
  frameMs: number;
  /** Total iterations: the last one always gets a preview frame. */
  iterations: number;
  /**
   * A run resumed from a checkpoint (src/queue): the iterations, seconds and scales done before it,
   * added to everything it reports, so that the count goes on where the checkpoint left it.
   */
  offset?: { iteration: number; seconds: number; scale: number };
  /** Send a checkpoint at most this often (ms), and one of the best picture when aborted; none when unset. */
  checkpointMs?: number;
}

/** The picture a run has reached, to resume from: at the size of its scale (1-based, of the whole job). */
export interface Checkpoint {
  image: RgbImage;
  iteration: number;
  scale: number;
  seconds: number;
}

/** What a worker tells the server of its job, in order, ending with "finished". */
export type WorkerMessage =
  | { type: "stage"; stage: Stage }
  | { type: "progress"; progress: Progress }
  | { type: "preview"; bytes: Uint8Array }
  | { type: "checkpoint"; checkpoint: Checkpoint }
  | {
      type: "result";
      png: Uint8Array;
      width: number;
      height: number;
      iterations: number;
      loss: number;
      seconds: number;
      /** Stopped by "abort": the best picture so far. */
      stoppedEarly: boolean;
    }
  /** `expected`: a StylegramError, whose message is for the user; else a bug, with its stack. */
  | { type: "error"; expected: boolean; message: string; stack?: string }
  /** The job's work has stopped; the worker takes the next. */
  | { type: "finished" };
