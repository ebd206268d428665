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
}

/** What a worker tells the server of its job, in order, ending with "finished". */
export type WorkerMessage =
  | { type: "stage"; stage: Stage }
  | { type: "progress"; progress: Progress }
  | { type: "preview"; bytes: Uint8Array }
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
