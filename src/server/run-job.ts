import { type ChildProcess, fork } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../fsutil/atomic.js";
import type { VggWeights } from "../network/weights.js";
import type { Job } from "./jobs.js";
import { withUploadNames } from "./uploads.js";
import type { Checkpoint, WorkerInput, WorkerMessage } from "./worker-protocol.js";

export interface RunContext {
  /** The processes that run the jobs. */
  pool: WorkerPool;
  /** Compute threads of one job: the cores shared among the jobs that run at once. */
  threads: number;
  /** At least this long between two preview frames, so that fast small runs do not flood the pages. */
  frameMs: number;
  /** Where unexpected errors are reported (the server's log). */
  logError: (e: unknown, job: Job) => void;
  /** Where a job's failure (the message its page shows) is reported. */
  logFailure: (message: string, job: Job) => void;
  /** For a queue's worker: checkpoints at most every checkpointMs, to resume from (worker-protocol.ts). */
  checkpoints?: { everyMs: number; save: (c: Checkpoint, job: Job) => void };
  /** For a run resumed from a checkpoint: what was done before it. */
  offset?: WorkerInput["offset"];
}

/**
 * The worker's module. In a clone run by tsx it is TypeScript, which the
 * process loads through tsx (resolved here, so that any working folder does);
 * installed, it is plain JS.
 */
const ENTRY = fileURLToPath(
  new URL(import.meta.url.endsWith(".ts") ? "./job-worker.ts" : "./job-worker.js", import.meta.url),
);
const EXEC_ARGV = import.meta.url.endsWith(".ts") ? ["--import", import.meta.resolve("tsx")] : [];

/**
 * The server's worker processes (job-worker.ts), each running one job at a
 * time and kept for the next, so that a job does not wait for one to start and
 * be sent the weights (a second or so). An idle one does not keep the server's
 * process alive; one killed or dead is replaced by the next job.
 */
export class WorkerPool {
  private readonly idle: ChildProcess[] = [];
  private readonly busy = new Map<Job, ChildProcess>();
  private closed = false;

  constructor(private readonly weights: VggWeights) {}

  take(job: Job): ChildProcess {
    let worker = this.idle.pop();
    if (!worker) {
      worker = fork(ENTRY, [], {
        execArgv: EXEC_ARGV,
        serialization: "advanced",
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      worker.send({ type: "weights", weights: this.weights });
    }
    worker.ref();
    worker.channel?.ref();
    this.busy.set(job, worker);
    return worker;
  }

  /** Takes back a job's worker once the job has finished; one that exited is forgotten. */
  give(job: Job, alive: boolean): void {
    const worker = this.busy.get(job);
    this.busy.delete(job);
    if (!worker || !alive) return;
    if (this.closed) worker.kill("SIGKILL");
    else {
      worker.unref();
      worker.channel?.unref();
      this.idle.push(worker);
    }
  }

  /** Ends a job's work at once, wherever it is (a stopping server keeps nothing anyway). */
  kill(job: Job): void {
    this.busy.get(job)?.kill("SIGKILL");
  }

  /** Ends the idle workers (busy ones end with their job, or kill). */
  close(): void {
    this.closed = true;
    for (const w of this.idle.splice(0)) w.kill("SIGKILL");
  }
}

/** The uploads are not needed once the job has ended, whatever the ending. */
export function removeUploads(job: Job): void {
  for (const u of [job.spec.content, ...job.spec.styles]) fs.rmSync(u.file, { force: true });
}

/**
 * Runs one job with the library's stylize() in a worker process
 * (job-worker.ts), so that the server's thread stays free for requests however
 * long an evaluation takes: its stages, progress and preview frames, and the
 * result as a PNG in the job's folder. A failure (an unreadable image, a
 * diverging loss, memory) ends the job with the library's message. A cancel
 * after the first iteration aborts stylize(), which returns its best picture
 * so far (as the CLI's Ctrl-C keeps it): that picture is the cancelled job's
 * result; before it, the worker is ended. Resolves when the worker says the
 * job has finished, or has died: only then has the job's work stopped.
 */
export async function runJob(job: Job, ctx: RunContext): Promise<void> {
  const { signal } = job.controller;
  const uploads = [job.spec.content, ...job.spec.styles];
  const input: WorkerInput = {
    options: job.spec.options,
    content: job.spec.content.file,
    styles: job.spec.styles.map((s) => s.file),
    threads: ctx.threads,
    frameMs: ctx.frameMs,
    iterations: job.spec.iterations,
    ...(ctx.offset ? { offset: ctx.offset } : {}),
    ...(ctx.checkpoints ? { checkpointMs: ctx.checkpoints.everyMs } : {}),
  };
  const worker = ctx.pool.take(job);
  // Before its first iteration a job has no picture to keep, and its set-up may be one long
  // evaluation (minutes for large style images) that a signal cannot interrupt: its process is
  // ended at once. After it, stylize() stops at its next step and returns the best picture.
  const abort = () => {
    if (job.iteration === 0) ctx.pool.kill(job);
    else if (worker.connected) worker.send("abort");
  };

  const fail = (e: unknown) => {
    if (signal.aborted) return job.end("cancelled");
    ctx.logError(e, job);
    job.end("failed", {
      error: `internal error: ${(e as Error).message ?? String(e)} (a bug: the server's log has the details)`,
    });
  };
  const handle = (m: WorkerMessage) => {
    switch (m.type) {
      case "stage":
        return job.onStage(m.stage);
      case "progress":
        return job.onProgress(m.progress);
      case "preview":
        return job.setPreview(Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength));
      case "checkpoint":
        return ctx.checkpoints?.save(m.checkpoint, job);
      case "result": {
        // The file, then the ending, with nothing between them that a DELETE could come into:
        // whatever the job says it has, it has.
        const file = path.join(job.dir, "result.png");
        try {
          writeFileAtomic(file, m.png);
        } catch (e) {
          return fail(e);
        }
        return job.end(m.stoppedEarly ? "cancelled" : "done", {
          result: { file, width: m.width, height: m.height },
          iterations: m.iterations,
          loss: m.loss,
          elapsed: m.seconds,
        });
      }
      case "error": {
        if (signal.aborted) return job.end("cancelled");
        if (!m.expected) return fail(Object.assign(new Error(m.message), { stack: m.stack }));
        const message = withUploadNames(m.message, uploads);
        ctx.logFailure(message, job);
        return job.end("failed", { error: message });
      }
      case "finished":
        return;
    }
  };
  let alive = true;
  try {
    await new Promise<void>((resolve) => {
      const done = (exited: boolean) => {
        alive = !exited;
        worker.off("message", onMessage);
        worker.off("exit", onExit);
        worker.off("error", onError);
        resolve();
      };
      const onMessage = (m: WorkerMessage) => {
        handle(m);
        if (m.type === "finished") done(false);
      };
      // Killed, or dead (out of memory, most likely): its work has stopped too, and it said nothing of it.
      const onExit = (code: number | null, sig: string | null) => {
        if (!job.finished && !signal.aborted) {
          const why = `the job's process ended (${sig ?? `exit code ${code}`}) before the job did`;
          ctx.logError(new Error(why), job);
          job.end("failed", { error: `${why}: out of memory, most likely; try a smaller size` });
        }
        done(true);
      };
      // It could not be started: its work never began.
      const onError = (e: Error) => {
        fail(e);
        done(true);
      };
      worker.on("message", onMessage);
      worker.on("exit", onExit);
      worker.once("error", onError);
      signal.addEventListener("abort", abort, { once: true });
      worker.send({ type: "run", input });
      if (signal.aborted) abort();
    });
  } finally {
    signal.removeEventListener("abort", abort);
    ctx.pool.give(job, alive);
    removeUploads(job);
  }
}
