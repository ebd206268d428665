import type { Progress, Stage } from "../stylize/options.js";
import { lineFull } from "./admission.js";
import type { JobOptions } from "./options.js";
import type { Upload } from "./uploads.js";

/** "cancelling": asked to stop while it runs; it holds its slot until its work has stopped. */
export type JobState = "queued" | "running" | "cancelling" | "done" | "failed" | "cancelled";

/** What a job's page hears, in order: its place in line, set-up steps, progress, then one ending. */
export type JobEvent =
  | { type: "queued"; position: number }
  | { type: "running" }
  | { type: "stage"; stage: Stage["stage"]; device?: string; width?: number; height?: number }
  | {
      type: "progress";
      iteration: number;
      iterations: number;
      loss: number;
      elapsed: number;
      eta: number;
      preview: string | null;
    }
  | { type: "done"; iterations: number; loss: number; elapsed: number; width: number; height: number }
  | { type: "failed"; error: string }
  | { type: "cancelling" }
  /** With the best picture so far when it had run an iteration (as the CLI's Ctrl-C keeps it), else null. */
  | {
      type: "cancelled";
      iterations: number;
      loss: number | null;
      result: { width: number; height: number } | null;
    };

export interface JobSpec {
  content: Upload;
  styles: Upload[];
  options: JobOptions;
  /** The equivalent `stylegram` command. */
  command: string;
  /** Total iterations, for the progress before the first one. */
  iterations: number;
}

export interface JobResult {
  file: string;
  width: number;
  height: number;
}

/** One stylization asked of the server: its state, its progress so far and its listeners. */
export class Job {
  state: JobState = "queued";
  iteration = 0;
  loss: number | undefined;
  elapsed = 0;
  error: string | undefined;
  stage: JobEvent | undefined;
  /** Every iteration's loss, for the plot of a page that attaches late. */
  readonly losses: [number, number][] = [];
  /** The latest preview frame (a small JPEG) and its number. */
  preview: { frame: number; bytes: Buffer } | undefined;
  result: JobResult | undefined;
  finishedAt: number | undefined;
  readonly createdAt = Date.now();
  readonly controller = new AbortController();
  private readonly listeners = new Set<(e: JobEvent) => void>();

  constructor(
    readonly id: string,
    /** The job's private folder: its uploads, then its result. */
    readonly dir: string,
    readonly spec: JobSpec,
    /** Whom the job counts against (hosts.ts clientKey). */
    readonly client = "local",
  ) {}

  get finished(): boolean {
    return this.state === "done" || this.state === "failed" || this.state === "cancelled";
  }

  /** Calls `listener` with every later event; returns the unsubscribe. */
  subscribe(listener: (e: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(e: JobEvent): void {
    for (const l of this.listeners) l(e);
  }

  /** Seconds left, as stylize() estimated it at the last iteration, less the time since. */
  get eta(): number {
    if (this.iteration === 0) return Number.NaN;
    return Math.max(0, this.etaAtProgress - (performance.now() - this.progressAt) / 1000);
  }
  private etaAtProgress = Number.NaN;
  private progressAt = 0;

  previewUrl(): string | null {
    return this.preview ? `/api/jobs/${this.id}/preview?frame=${this.preview.frame}` : null;
  }

  onStage(s: Stage): void {
    this.stage = {
      type: "stage",
      stage: s.stage,
      ...(s.device ? { device: s.device } : {}),
      ...(s.width ? { width: s.width, height: s.height as number } : {}),
    };
    this.emit(this.stage);
  }

  onProgress(p: Progress): void {
    if (this.finished) return;
    this.iteration = p.iteration;
    this.loss = p.loss;
    this.elapsed = p.seconds;
    this.etaAtProgress = p.etaSeconds;
    this.progressAt = performance.now();
    this.losses.push([p.iteration, p.loss]);
    this.emit({
      type: "progress",
      iteration: p.iteration,
      iterations: p.iterations,
      loss: p.loss,
      elapsed: p.seconds,
      eta: this.eta,
      preview: this.previewUrl(),
    });
  }

  setPreview(bytes: Buffer): void {
    this.preview = { frame: (this.preview?.frame ?? 0) + 1, bytes };
  }

  /** Asked to stop while it runs: it ends (cancelled) when its run has stopped. */
  startCancelling(): void {
    if (this.state !== "running") return;
    this.state = "cancelling";
    this.emit({ type: "cancelling" });
  }

  /**
   * Ends the job once; a later ending is ignored. A result is kept with "done",
   * and with "cancelled" when the run had a best picture to return.
   */
  end(
    state: "done" | "failed" | "cancelled",
    detail: { error?: string; result?: JobResult; iterations?: number; loss?: number; elapsed?: number } = {},
  ): void {
    if (this.finished) return;
    this.state = state;
    this.finishedAt = Date.now();
    this.result = detail.result;
    this.iteration = detail.iterations ?? this.iteration;
    this.loss = detail.loss ?? this.loss;
    this.elapsed = detail.elapsed ?? this.elapsed;
    if (state === "failed") {
      this.error = detail.error ?? "the job failed";
      this.emit({ type: "failed", error: this.error });
    } else if (state === "cancelled") {
      const r = this.result;
      this.emit({
        type: "cancelled",
        iterations: this.iteration,
        loss: this.loss ?? null,
        result: r ? { width: r.width, height: r.height } : null,
      });
    } else {
      const result = detail.result as JobResult;
      this.emit({
        type: "done",
        iterations: this.iteration,
        loss: this.loss as number,
        elapsed: this.elapsed,
        width: result.width,
        height: result.height,
      });
    }
    this.listeners.clear();
  }
}

export interface QueueOptions {
  /** Jobs that compute at once. */
  concurrency: number;
  /** Jobs that may wait for a slot; one more is refused with 429. */
  maxWaiting: number;
  /** Runs a job to its end (done or failed); the signal in job.controller cancels it. */
  run: (job: Job) => Promise<void>;
  /** Called for a job cancelled before it ran (a run cleans up after itself). */
  discard?: (job: Job) => void;
  /** Ends a running job's work at once, for a stop that cannot wait for its next step. */
  kill?: (job: Job) => void;
}

/**
 * The server's line of jobs: `concurrency` run at once, the rest wait in order
 * and hear their place in line whenever it changes. Cancelling a waiting job
 * ends it at once; cancelling a running one aborts its stylize(), and its slot
 * goes to the next job only when that run has stopped (its promise settled),
 * so that cancelled work never adds to the `concurrency` that runs.
 */
export class JobQueue {
  private readonly waiting: Job[] = [];
  private readonly running = new Set<Job>();
  /** Every run not yet settled: what a shutdown waits for. */
  private readonly runs = new Set<Promise<void>>();

  constructor(private readonly options: QueueOptions) {}

  /** 1-based place in the line of a waiting job (1: next to start); undefined otherwise. */
  position(job: Job): number | undefined {
    const i = this.waiting.indexOf(job);
    return i < 0 ? undefined : i + 1;
  }

  get counts(): { waiting: number; running: number } {
    return { waiting: this.waiting.length, running: this.running.size };
  }

  /** Seconds until a slot is likely to free: the soonest end among the running jobs. */
  retryAfter(): number {
    const etas = [...this.running].map((j) => j.eta).filter((s) => Number.isFinite(s));
    const soonest = etas.length === 0 ? 10 : Math.min(...etas);
    return Math.min(600, Math.max(1, Math.ceil(soonest)));
  }

  /** Refuses (429, with the seconds to wait) when the line is full. */
  assertRoom(): void {
    if (this.waiting.length >= this.options.maxWaiting) {
      throw lineFull(this.running.size, this.waiting.length, this.retryAfter());
    }
  }

  /** Puts a job in line, or refuses it (429) when the line is full. */
  add(job: Job): void {
    this.assertRoom();
    this.waiting.push(job);
    this.pump();
  }

  /**
   * Cancels a job: a waiting one ends now (cancelled); a running one is aborted
   * and ends when its run stops, keeping its best picture if it has one.
   */
  cancel(job: Job): void {
    if (job.finished) return;
    const i = this.waiting.indexOf(job);
    job.controller.abort(new Error("cancelled"));
    if (i >= 0) {
      this.waiting.splice(i, 1);
      job.end("cancelled");
      this.options.discard?.(job);
      this.pump();
    } else {
      job.startCancelling();
    }
  }

  /**
   * Cancels everything, ends the running work at once (kill), and waits (at
   * most `ms`) for the runs to settle: for a shutdown, which keeps nothing.
   * Resolves whether they all did.
   */
  async stop(ms = 10_000): Promise<boolean> {
    this.stopped = true;
    for (const job of [...this.waiting, ...this.running]) this.cancel(job);
    for (const job of this.running) this.options.kill?.(job);
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.allSettled([...this.runs]).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
    clearTimeout(timer);
    return settled;
  }
  private stopped = false;

  private pump(): void {
    while (!this.stopped && this.running.size < this.options.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift() as Job;
      this.running.add(job);
      job.state = "running";
      job.emit({ type: "running" });
      const run = this.options
        .run(job)
        .catch((e: unknown) => job.end("failed", { error: `internal error: ${(e as Error).message}` }))
        .finally(() => {
          if (!job.finished) {
            if (job.controller.signal.aborted) job.end("cancelled");
            else job.end("failed", { error: "internal error: the job ended without a result (a bug)" });
          }
          this.runs.delete(run);
          // The work has stopped: only now is the slot free.
          this.running.delete(job);
          this.pump();
        });
      this.runs.add(run);
    }
    this.waiting.forEach((job, i) => {
      job.emit({ type: "queued", position: i + 1 });
    });
  }
}
