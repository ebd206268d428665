import fs from "node:fs";
import type { VggWeights } from "../network/weights.js";
import type { Admission } from "./admission.js";
import { HttpError } from "./http-error.js";
import { type JobView, resultLinks } from "./job-view.js";
import { Job, JobQueue } from "./jobs.js";
import type { CancelAnswer, JobFeed, JobLine, LineCounts, NewJob } from "./line.js";
import type { JobMetrics } from "./metrics.js";
import { removeUploads, runJob, WorkerPool } from "./run-job.js";

export interface EmbeddedOptions {
  weights: VggWeights;
  concurrency: number;
  maxWaiting: number;
  /** Compute threads of one job. */
  threads: number;
  frameMs: number;
  expiryMs: number;
  admission: Admission;
  metrics: JobMetrics;
  logError: (e: unknown, message: string) => void;
  logFailure: (message: string) => void;
}

/**
 * The line of jobs in this process: a JobQueue with `concurrency` slots, each job run in one of this
 * machine's worker processes, its state in memory and its files in its folder. What a stop or a
 * crash of the server loses, it loses: a queue (src/queue) keeps it.
 */
export class EmbeddedLine implements JobLine {
  readonly jobs = new Map<string, Job>();
  readonly queue: JobQueue;
  readonly keeping: string;
  private readonly pool: WorkerPool;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly o: EmbeddedOptions) {
    this.keeping = `its results expire ${Math.round(o.expiryMs / 60_000)} minutes after it ends and are gone when the server stops`;
    this.pool = new WorkerPool(o.weights);
    this.queue = new JobQueue({
      concurrency: o.concurrency,
      maxWaiting: o.maxWaiting,
      run: async (job) => {
        const started = performance.now();
        await runJob(job, {
          pool: this.pool,
          threads: o.threads,
          frameMs: o.frameMs,
          logError: (e, j) => o.logError(e, `job ${j.id} failed unexpectedly`),
          logFailure: (message, j) => o.logFailure(`job ${j.id} failed: ${message}`),
        });
        o.metrics.jobEnded("local", job.state, (performance.now() - started) / 1000, job.iteration);
      },
      discard: (job) => {
        removeUploads(job);
        o.metrics.jobEnded("local", "cancelled");
      },
      kill: (job) => this.pool.kill(job),
    });
    // Finished jobs are forgotten, and their results removed, once they expire.
    this.sweeper = setInterval(
      () => {
        const now = Date.now();
        for (const [id, job] of this.jobs) {
          if (job.finishedAt !== undefined && now - job.finishedAt >= o.expiryMs) {
            this.jobs.delete(id);
            fs.rmSync(job.dir, { recursive: true, force: true });
          }
        }
      },
      Math.min(o.expiryMs, 60_000),
    );
    this.sweeper.unref();
  }

  /** Jobs of one client that hold a place in the line (waiting or running). */
  private active(client: string): number {
    let n = 0;
    for (const j of this.jobs.values()) if (j.client === client && !j.finished) n++;
    return n;
  }

  async assertMayQueue(client: string): Promise<void> {
    this.queue.assertRoom();
    this.o.admission.assertMayQueue(client, this.active(client));
  }

  async add(n: NewJob): Promise<{ state: Job["state"]; position: number | null }> {
    this.o.admission.assertMayQueue(n.client, this.active(n.client));
    const job = new Job(n.id, n.dir, n.spec, n.client);
    this.queue.add(job);
    this.jobs.set(n.id, job);
    this.o.admission.accepted(n.client);
    return { state: job.state, position: this.queue.position(job) ?? null };
  }

  private viewOf(job: Job): JobView {
    return {
      id: job.id,
      state: job.state,
      position: this.queue.position(job) ?? null,
      iteration: job.iteration,
      iterations: job.spec.iterations,
      loss: job.loss ?? null,
      error: job.error ?? null,
      elapsed: job.elapsed,
      eta: job.state === "done" ? 0 : Number.isFinite(job.eta) && !job.finished ? job.eta : null,
      stage: job.stage?.type === "stage" ? job.stage.stage : null,
      preview: job.previewUrl(),
      losses: job.losses,
      content: job.spec.content.name,
      styles: job.spec.styles.map((s) => s.name),
      options: job.spec.options,
      command: job.spec.command,
      result: job.result ? resultLinks(job.id, job.result) : null,
      expiresAt:
        job.finishedAt === undefined ? null : new Date(job.finishedAt + this.o.expiryMs).toISOString(),
    };
  }

  async view(id: string): Promise<JobView | undefined> {
    const job = this.jobs.get(id);
    return job && this.viewOf(job);
  }

  async follow(id: string): Promise<JobFeed | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    return { snapshot: this.viewOf(job), subscribe: (listener) => job.subscribe(listener) };
  }

  async preview(id: string): Promise<Buffer | undefined> {
    return this.jobs.get(id)?.preview?.bytes;
  }

  async result(id: string): Promise<{ view: JobView; png: Buffer | undefined } | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    const view = this.viewOf(job);
    if (!job.result) return { view, png: undefined };
    try {
      return { view, png: fs.readFileSync(job.result.file) };
    } catch {
      // Removed (DELETE) between the look-up and the read.
      throw new HttpError(404, `job ${job.id}'s result was removed`);
    }
  }

  async cancel(id: string): Promise<CancelAnswer | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (!job.finished) {
      this.queue.cancel(job);
      return { id: job.id, state: job.state };
    }
    // A finished job: its result is removed now rather than at its expiry.
    this.jobs.delete(job.id);
    fs.rmSync(job.dir, { recursive: true, force: true });
    return { id: job.id, state: job.state, removed: true };
  }

  async counts(): Promise<LineCounts> {
    return this.queue.counts;
  }

  async health(): Promise<{ ok: boolean; detail: string }> {
    const { waiting, running } = this.queue.counts;
    return { ok: true, detail: `${running} running and ${waiting} waiting in this process` };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.queue.stop();
    this.pool.close();
  }
}
