import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  type Job as BullJob,
  type ConnectionOptions,
  QueueEvents,
  UnrecoverableError,
  WaitingError,
  Worker,
} from "bullmq";
import sharp from "sharp";
import type { VggWeights } from "../network/weights.js";
import { Job, type JobState } from "../server/jobs.js";
import { JobMetrics } from "../server/metrics.js";
import { makePrivateDir, removeStaleDirs } from "../server/private-dir.js";
import { runJob, WorkerPool } from "../server/run-job.js";
import type { Upload } from "../server/uploads.js";
import type { Checkpoint } from "../server/worker-protocol.js";
import { connect, PREFIX, QUEUE_NAME, type QueueAddress } from "./connection.js";
import { resumePlan } from "./resume.js";
import { finishJob, keys, LIVE_SECONDS, parseRecord, previewUrl, withScripts } from "./store.js";

export interface QueueWorkerOptions {
  address: QueueAddress;
  weights: VggWeights;
  /** Jobs run at once, each in its own process (default 1). */
  concurrency?: number;
  /** Compute threads of all its jobs together (default: the cores). */
  threads?: number;
  /** The name the fleet knows it by (metrics, logs; default HOST-PID). */
  name?: string;
  /** At most this long between two checkpoints of a running job (default 10 s). */
  checkpointMs?: number;
  /** A worker that stops renewing its lock for this long has its jobs taken over (default 30 s). */
  takeoverMs?: number;
  /** Least time between two preview frames (default 400 ms). */
  frameMs?: number;
  /** How long a finished job's result is kept (default 1 hour); the servers say the same. */
  expiryMs?: number;
  /** Where the jobs' files are written while they run (default: the system's temporary folder). */
  tmpRoot?: string;
  log?: (line: string) => void;
}

/** What the worker keeps of a job it runs: how to stop it, and why it stopped. */
interface Running {
  job: Job;
  /** Set by handBack: end the run, keep its checkpoint and put it back in line. */
  handBack: boolean;
  /** Set when its record is no longer ours (a worker thought dead whose job was taken over). */
  lost: boolean;
}

/**
 * `stylegram worker`: takes jobs from the queue, runs each in a process of its own (run-job.ts,
 * as the embedded server does: a job that crashes or runs out of memory fails alone) and writes what
 * happens into the job's record, which every server reads and follows through BullMQ's events.
 * A running job is checkpointed (its best picture and iteration) every checkpointMs; a job whose
 * worker vanished is taken over by BullMQ's stalled-job check and resumed from its checkpoint; a
 * cancel reaches it through a custom event on the queue's event stream.
 */
export class QueueWorker {
  readonly name: string;
  readonly metrics = new JobMetrics();
  private readonly redis: ReturnType<typeof withScripts>;
  private readonly worker: Worker;
  private readonly events: QueueEvents;
  private readonly pool: WorkerPool;
  private readonly running = new Map<string, Running>();
  private readonly dir: string;
  private readonly stopMarking: () => void;
  private readonly metricsTimer: NodeJS.Timeout;
  private readonly threads: number;
  private readonly checkpointMs: number;
  private readonly frameMs: number;
  private readonly expiryMs: number;
  private readonly log: (line: string) => void;

  constructor(o: QueueWorkerOptions) {
    const concurrency = o.concurrency ?? 1;
    this.name = o.name ?? `${os.hostname()}-${process.pid}`;
    this.threads = Math.max(1, Math.floor((o.threads ?? os.availableParallelism()) / concurrency));
    this.checkpointMs = o.checkpointMs ?? 10_000;
    this.frameMs = o.frameMs ?? 400;
    this.expiryMs = o.expiryMs ?? 60 * 60_000;
    this.log = o.log ?? (() => {});
    const tmpRoot = o.tmpRoot ?? os.tmpdir();
    removeStaleDirs(tmpRoot);
    ({ dir: this.dir, stop: this.stopMarking } = makePrivateDir(tmpRoot));
    this.pool = new WorkerPool(o.weights);
    this.redis = withScripts(connect(o.address, `stylegram-worker-${this.name}`));
    const takeoverMs = o.takeoverMs ?? 30_000;
    // BullMQ's own abort signal is not listened to: a cancel comes through the job's record and the
    // "cancel" event, and a lost lock shows as a record that another worker owns.
    this.worker = new Worker(QUEUE_NAME, (job, token) => this.process(job, token as string), {
      connection: {
        ...o.address.options,
        connectionName: `stylegram-worker-${this.name}`,
      } as ConnectionOptions,
      prefix: PREFIX,
      name: this.name,
      concurrency,
      // The lock a worker renews while it runs a job; another worker's check takes over a job whose
      // lock has lapsed (its worker killed, its machine gone) and puts it back in line.
      lockDuration: takeoverMs,
      stalledInterval: Math.max(500, Math.floor(takeoverMs / 2)),
      // A job whose worker vanishes this often is failed rather than tried again.
      maxStalledCount: 3,
      autorun: false,
    });
    this.worker.on("error", (e) => this.log(`queue error: ${e.message}`));
    this.events = new QueueEvents(QUEUE_NAME, {
      connection: {
        ...o.address.options,
        connectionName: `stylegram-worker-events-${this.name}`,
      } as ConnectionOptions,
      prefix: PREFIX,
    });
    this.events.on("error", (e) => this.log(`queue events error: ${(e as Error).message}`));
    // A DELETE on any server: the job stops here if it runs here.
    (this.events as unknown as NodeJS.EventEmitter).on("cancel", (args: { jobId?: string }) => {
      const id = args.jobId;
      const r = id === undefined ? undefined : this.running.get(id);
      if (r) this.cancel(r);
    });
    this.metricsTimer = setInterval(() => void this.publishMetrics(), 5000);
    this.metricsTimer.unref();
  }

  /** Starts taking jobs; resolves once it is connected. */
  async start(): Promise<void> {
    await this.worker.waitUntilReady();
    await this.events.waitUntilReady();
    void this.worker.run().catch((e: Error) => this.log(`queue error: ${e.message}`));
    await this.publishMetrics();
  }

  private cancel(r: Running): void {
    if (r.job.finished || r.job.controller.signal.aborted) return;
    r.job.controller.abort(new Error("cancelled"));
    r.job.startCancelling();
  }

  /**
   * Stops taking jobs and hands the running ones back at once: each stops at its next step (or
   * now, before its first iteration), its best picture becomes its checkpoint and it goes back to
   * the head of the line, for this worker's next start or another worker.
   */
  async handBack(): Promise<void> {
    for (const r of this.running.values()) {
      r.handBack = true;
      if (!r.job.controller.signal.aborted) r.job.controller.abort(new Error("handed back"));
    }
    await this.close();
  }

  async close(): Promise<void> {
    clearInterval(this.metricsTimer);
    await this.worker.close();
    await this.events.close();
    await this.publishMetrics().catch(() => {});
    this.pool.close();
    this.redis.disconnect();
    this.stopMarking();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** This worker's metrics, for the servers' /metrics (they expire if it stops without a word). */
  private async publishMetrics(): Promise<void> {
    const json = JSON.stringify(await this.metrics.json());
    await this.redis
      .multi()
      .set(keys.metrics(this.name), json, "EX", 60)
      .sadd(keys.metricsWorkers, this.name)
      .exec();
  }

  private async process(bull: BullJob, token: string): Promise<void> {
    const id = bull.id as string;
    const claimed = await this.redis.claim(
      keys.record(id),
      keys.losses(id),
      keys.checkpoint(id),
      token,
      this.name,
      LIVE_SECONDS,
    );
    // Gone (expired) or ended (cancelled while it waited): nothing to run.
    if (claimed === -1 || claimed === 0) return;
    const record = parseRecord(await this.redis.hgetall(keys.record(id)));
    if (!record) return;
    const { spec } = record;
    const uploads = spec.styles.length + 1;
    const end = (
      state: "done" | "failed" | "cancelled",
      png: Buffer | "checkpoint" | undefined,
      fields: Record<string, string | number>,
    ) =>
      finishJob(
        this.redis,
        id,
        { client: record.client, uploads },
        { token, state, keepSeconds: this.expiryMs / 1000, png, fields },
      );
    if (claimed === 2) {
      // Cancelled as it was taken: the picture of an earlier run, if any, is its result.
      await end("cancelled", "checkpoint", {});
      return;
    }

    const dir = path.join(this.dir, id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      const files = await this.redis
        .multi(Array.from({ length: uploads }, (_, i) => ["getBuffer", keys.upload(id, i)]))
        .exec();
      const bytes = (files ?? []).map(([, v]) => v as Buffer | null);
      if (bytes.some((b) => b === null)) {
        await end("failed", undefined, {
          error:
            "its uploads were not found in the queue (expired, or Redis lost them): send the images again",
        });
        return;
      }
      const stored = [spec.content, ...spec.styles].map((u, i): Upload => {
        const file = path.join(dir, i === 0 ? "content" : `style-${i}`);
        fs.writeFileSync(file, bytes[i] as Buffer, { mode: 0o600 });
        return { ...u, file };
      });
      const checkpoint = await this.redis.hgetallBuffer(keys.checkpoint(id));
      let options = spec.options;
      let offset: ReturnType<typeof resumePlan>["offset"] | undefined;
      if (checkpoint.png) {
        const plan = resumePlan(spec.options, spec.steps, {
          iteration: Number(checkpoint.iteration),
          scale: Number(checkpoint.scale),
          seconds: Number(checkpoint.seconds),
        });
        const { data, info } = await sharp(checkpoint.png).raw().toBuffer({ resolveWithObject: true });
        options = {
          ...plan.options,
          init: { image: { width: info.width, height: info.height, data: new Uint8Array(data) } },
        };
        offset = plan.offset;
        this.log(`job ${id}: resuming from its checkpoint at iteration ${offset.iteration}`);
      }
      const job = new Job(
        id,
        dir,
        {
          content: stored[0] as Upload,
          styles: stored.slice(1),
          options,
          command: spec.command,
          iterations: spec.iterations,
        },
        record.client,
      );
      job.state = "running";
      const r: Running = { job, handBack: false, lost: false };
      this.running.set(id, r);
      // A cancel asked before this worker listened.
      if ((await this.redis.hget(keys.record(id), "cancel")) === "1") this.cancel(r);
      const started = performance.now();
      const writes = this.follow(r, bull, token);
      await runJob(job, {
        pool: this.pool,
        threads: this.threads,
        frameMs: this.frameMs,
        logError: (e, j) => this.log(`job ${j.id} failed unexpectedly: ${(e as Error).stack ?? e}`),
        logFailure: (message, j) => this.log(`job ${j.id} failed: ${message}`),
        checkpoints: { everyMs: this.checkpointMs, save: (c) => writes.checkpoint(c) },
        ...(offset ? { offset } : {}),
      });
      await writes.settled();
      this.running.delete(id);
      const seconds = (performance.now() - started) / 1000;
      const evaluations = Math.max(0, job.iteration - (offset?.iteration ?? 0));
      if (r.lost) {
        this.log(`job ${id}: another worker took it over; this run's work is dropped`);
        return;
      }
      if (r.handBack) {
        this.metrics.ran(this.name, seconds, evaluations);
        await bull.moveToWait(token);
        this.log(`job ${id}: handed back at iteration ${job.iteration}`);
        throw new WaitingError();
      }
      const state = job.state as JobState;
      this.metrics.jobEnded(this.name, state, seconds, evaluations);
      const fields = { iteration: job.iteration, loss: job.loss ?? "", elapsed: job.elapsed, eta: "" };
      if (state === "failed") {
        await end("failed", undefined, { ...fields, error: job.error ?? "the job failed" });
        // BullMQ's own state says failed too, never to be tried again.
        throw new UnrecoverableError(job.error ?? "the job failed");
      }
      const result = job.result;
      const png = result ? fs.readFileSync(result.file) : state === "cancelled" ? "checkpoint" : undefined;
      await end(state === "done" ? "done" : "cancelled", png, {
        ...fields,
        ...(result ? { width: result.width, height: result.height } : {}),
      });
    } finally {
      this.running.delete(id);
      fs.rmSync(dir, { recursive: true, force: true });
      void this.publishMetrics().catch(() => {});
    }
  }

  /**
   * Writes a running job's events into its record, in order, and publishes each on the queue's
   * event stream (BullMQ's job progress) for the servers to pass on to the pages.
   */
  private follow(r: Running, bull: BullJob, token: string) {
    const { job } = r;
    const id = job.id;
    let chain: Promise<unknown> = Promise.resolve();
    let frame = 0;
    const owned = (ok: number) => {
      if (ok !== 1 && !r.lost) {
        r.lost = true;
        if (!job.controller.signal.aborted) job.controller.abort(new Error("taken over"));
      }
    };
    const queue = (write: () => Promise<unknown>) => {
      chain = chain
        .then(write)
        .catch((e: Error) => this.log(`job ${id}: a write to the queue failed: ${e.message}`));
    };
    job.subscribe((e) => {
      if (r.handBack && e.type === "cancelling") return;
      if (e.type === "stage") {
        queue(async () => {
          owned(await this.redis.progress(keys.record(id), keys.losses(id), token, "", "stage", e.stage));
          await bull.updateProgress(e);
        });
      } else if (e.type === "progress") {
        const preview = job.preview;
        const bytes = preview && preview.frame !== frame ? preview.bytes : undefined;
        if (preview) frame = preview.frame;
        const at = Date.now();
        queue(async () => {
          if (bytes) owned(await this.redis.preview(keys.record(id), keys.preview(id), token, frame, bytes));
          owned(
            await this.redis.progress(
              keys.record(id),
              keys.losses(id),
              token,
              `${e.iteration} ${e.loss}`,
              "iteration",
              e.iteration,
              "loss",
              e.loss,
              "elapsed",
              e.elapsed,
              "eta",
              Number.isFinite(e.eta) ? e.eta : "",
              "at",
              at,
            ),
          );
          await bull.updateProgress({ ...e, preview: previewUrl(id, frame) });
        });
      } else if (e.type === "cancelling") {
        queue(() => bull.updateProgress(e));
      }
    });
    return {
      checkpoint: (c: Checkpoint) =>
        queue(async () => {
          const png = await sharp(c.image.data, {
            raw: { width: c.image.width, height: c.image.height, channels: 3 },
          })
            .png()
            .toBuffer();
          owned(
            await this.redis.checkpoint(
              keys.record(id),
              keys.checkpoint(id),
              token,
              png,
              c.iteration,
              c.scale,
              c.seconds,
              c.image.width,
              c.image.height,
            ),
          );
        }),
      settled: async () => {
        await chain;
      },
    };
  }
}
