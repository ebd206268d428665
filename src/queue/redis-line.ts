import fs from "node:fs";
import { type ConnectionOptions, Queue, QueueEvents, QueueEventsProducer } from "bullmq";
import { lineFull, overRate, overShare } from "../server/admission.js";
import type { LineContext, LineFactory } from "../server/app.js";
import { HttpError } from "../server/http-error.js";
import type { JobView } from "../server/job-view.js";
import type { JobEvent, JobState } from "../server/jobs.js";
import type { CancelAnswer, JobFeed, JobLine, LineCounts, NewJob } from "../server/line.js";
import type { MetricsJson } from "../server/metrics.js";
import { connect, PREFIX, QUEUE_NAME, type QueueAddress } from "./connection.js";
import {
  endingEvent,
  etaNow,
  finishJob,
  type JobRecord,
  keys,
  LIVE_SECONDS,
  parseLosses,
  parseRecord,
  type StoredSpec,
  viewOf,
  withScripts,
} from "./store.js";

/** How long the server waits for Redis when it starts, before it says it cannot reach it. */
const CONNECT_MS = 10_000;
/** The most events the queue's stream keeps (BullMQ's default): enough for a page that reconnects. */
const MAX_EVENTS = 10_000;

type Listener = (e: JobEvent) => void;

/** `stylegram serve --queue URL`: the server's jobs on a Redis queue that workers anywhere take. */
export function redisLine(address: QueueAddress): LineFactory {
  return async (ctx) => {
    // Redis is reached first, alone: BullMQ's connections would go on trying (and keep the process alive).
    const redis = withScripts(connect(address, "stylegram-server", true));
    redis.on("error", () => {}); // reported by the requests that fail (503) and by /healthz
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => redis.once("ready", () => resolve())),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new HttpError(
                  503,
                  `cannot reach Redis at ${address.shown} (--queue): start it, or check the address and password`,
                ),
              ),
            CONNECT_MS,
          );
        }),
      ]);
    } catch (e) {
      redis.disconnect();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    const line = new RedisLine(address, ctx, redis);
    try {
      await line.ready();
    } catch (e) {
      await line.close();
      throw e;
    }
    return line;
  };
}

/**
 * The line of jobs in Redis: BullMQ's queue holds the order and the locks, the job's record
 * (store.ts) what a page sees, and BullMQ's event stream carries what happens to every server, each
 * passing it on to the pages that follow the job through it. Nothing of a job is kept in this
 * process, so that any server answers for any job and a restarted one loses nothing. The limits on
 * the line and on each client are checked and taken in one script in Redis, for the whole fleet.
 */
export class RedisLine implements JobLine {
  readonly keeping: string;
  readonly rateLimitRedis: unknown;
  private readonly redis: ReturnType<typeof withScripts>;
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly producer: QueueEventsProducer;
  private readonly followers = new Map<string, Set<Listener>>();
  private readonly positions = new Map<string, number>();
  private positionsDue = false;

  constructor(
    private readonly address: QueueAddress,
    private readonly ctx: LineContext,
    redis: ReturnType<typeof withScripts>,
  ) {
    this.keeping = `its results expire ${Math.round(ctx.expiryMs / 60_000)} minutes after it ends`;
    this.redis = redis;
    this.rateLimitRedis = this.redis;
    const connection = { ...address.options, connectionName: "stylegram-server-queue" } as ConnectionOptions;
    this.queue = new Queue(QUEUE_NAME, {
      connection,
      prefix: PREFIX,
      streams: { events: { maxLen: MAX_EVENTS } },
    });
    this.queue.on("error", () => {});
    this.producer = new QueueEventsProducer(QUEUE_NAME, { connection, prefix: PREFIX });
    this.producer.on("error", () => {});
    this.events = new QueueEvents(QUEUE_NAME, {
      connection: { ...address.options, connectionName: "stylegram-server-events" } as ConnectionOptions,
      prefix: PREFIX,
    });
    this.events.on("error", () => {});
    this.events.on("progress", ({ jobId, data }) => this.emit(jobId, data as JobEvent));
    this.events.on("active", ({ jobId }) => {
      this.positions.delete(jobId);
      this.emit(jobId, { type: "running" });
      this.positionsChanged();
    });
    this.events.on("waiting", () => this.positionsChanged());
    this.events.on("completed", ({ jobId }) => void this.ended(jobId));
    this.events.on("failed", ({ jobId, failedReason }) => void this.ended(jobId, failedReason));
    // Ended by a server (a cancel while it waited): the others' pages hear it too.
    (this.events as unknown as NodeJS.EventEmitter).on("ended", ({ jobId }: { jobId: string }) => {
      void this.ended(jobId);
    });
  }

  /** Resolves once BullMQ's connections are up. */
  async ready(): Promise<void> {
    await Promise.all([this.queue.waitUntilReady(), this.events.waitUntilReady()]);
  }

  /** A request's trouble with Redis, as a 503 with the address: the server is fine, its queue is not reachable. */
  private async guarded<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      if (e instanceof HttpError) throw e;
      throw new HttpError(
        503,
        `the job queue (Redis at ${this.address.shown}) did not answer: ${(e as Error).message}. Try again in a few seconds`,
        undefined,
        5,
      );
    }
  }

  // ---- Following ------------------------------------------------------------------------------

  private emit(id: string, e: JobEvent): void {
    for (const l of this.followers.get(id) ?? []) l(e);
  }

  private follower(id: string, l: Listener): () => void {
    const set = this.followers.get(id) ?? new Set<Listener>();
    this.followers.set(id, set);
    set.add(l);
    return () => {
      set.delete(l);
      if (set.size === 0) {
        this.followers.delete(id);
        this.positions.delete(id);
      }
    };
  }

  /** A job has ended (or BullMQ failed it): its followers hear the ending, from its record. */
  private async ended(id: string, failedReason?: string): Promise<void> {
    try {
      let r = await this.record(id);
      if (r && r.state === undefined && failedReason !== undefined) {
        // Failed by BullMQ itself (its workers vanished too often): the record says so too.
        await this.finishHere(id, r, "failed", {
          error: `the job was stopped: ${failedReason} (its worker stopped answering too often)`,
        });
        r = await this.record(id);
      }
      if (r?.state !== undefined) {
        this.emit(id, endingEvent(r));
        this.followers.delete(id);
      }
    } catch (e) {
      this.ctx.logError(e, `job ${id}: its ending could not be read from the queue`);
    }
    this.positionsChanged();
  }

  /** Tells the followers of waiting jobs their new places, once per burst of changes. */
  private positionsChanged(): void {
    if (this.positionsDue || this.followers.size === 0) return;
    this.positionsDue = true;
    setTimeout(() => {
      this.positionsDue = false;
      void this.redis
        .lrange(this.queue.keys.wait as string, 0, -1)
        .then((ids) => {
          ids.forEach((id, i) => {
            const position = ids.length - i;
            if (!this.followers.has(id) || this.positions.get(id) === position) return;
            this.positions.set(id, position);
            this.emit(id, { type: "queued", position });
          });
        })
        .catch(() => {});
    }, 50).unref();
  }

  // ---- Reading --------------------------------------------------------------------------------

  private async record(id: string): Promise<JobRecord | undefined> {
    return parseRecord(await this.redis.hgetall(keys.record(id)));
  }

  /** BullMQ's state of a job that has not ended, as the API says it, with its place in line. */
  private async live(id: string, r: JobRecord): Promise<{ state: JobState; position: number | null }> {
    const state = await this.queue.getJobState(id);
    if (state === "active") return { state: r.cancel ? "cancelling" : "running", position: null };
    if (state === "completed" || state === "failed") return { state: "failed", position: null };
    const index = await this.redis.lpos(this.queue.keys.wait as string, id);
    if (index === null) return { state: "queued", position: null };
    const length = await this.redis.llen(this.queue.keys.wait as string);
    return { state: "queued", position: length - index };
  }

  async view(id: string): Promise<JobView | undefined> {
    return this.guarded(async () => {
      let r = await this.record(id);
      if (!r) return undefined;
      if (r.state === undefined && (await this.queue.getJobState(id)) === "failed") {
        // BullMQ failed it while no server listened: the ending is written now.
        const job = await this.queue.getJob(id);
        await this.ended(id, job?.failedReason ?? "unknown");
        r = (await this.record(id)) ?? r;
      }
      let losses = parseLosses(await this.redis.lrange(keys.losses(id), 0, -1));
      let live = r.state === undefined ? await this.live(id, r) : { state: r.state, position: null };
      if (r.state === undefined && live.state === "failed") {
        // Ended between the two reads: a worker writes the record's ending before BullMQ's.
        r = (await this.record(id)) ?? r;
        if (r.state !== undefined) {
          live = { state: r.state, position: null };
          losses = parseLosses(await this.redis.lrange(keys.losses(id), 0, -1));
        }
      }
      // BullMQ ended it but no worker wrote its ending (one that lost its lock): say so, not nothing.
      const error =
        live.state === "failed" && r.error === undefined
          ? "the queue ended the job without its result (its worker stopped answering): send it again"
          : r.error;
      return viewOf(id, { ...r, ...(error === undefined ? {} : { error }) }, losses, live, this.ctx.expiryMs);
    });
  }

  async follow(id: string): Promise<JobFeed | undefined> {
    // Listening first, then reading: nothing that happens between is missed.
    const early: JobEvent[] = [];
    let deliver: Listener | undefined;
    const stop = this.follower(id, (e) => (deliver ? deliver(e) : early.push(e)));
    let snapshot: JobView | undefined;
    try {
      snapshot = await this.view(id);
    } catch (e) {
      stop();
      throw e;
    }
    if (!snapshot || ["done", "failed", "cancelled"].includes(snapshot.state)) stop();
    if (!snapshot) return undefined;
    const seen = snapshot.iteration;
    return {
      snapshot,
      subscribe: (listener) => {
        deliver = listener;
        // What the snapshot already shows is not told again.
        for (const e of early.splice(0)) if (e.type !== "progress" || e.iteration > seen) listener(e);
        return stop;
      },
    };
  }

  async preview(id: string): Promise<Buffer | undefined> {
    return this.guarded(async () => (await this.redis.getBuffer(keys.preview(id))) ?? undefined);
  }

  async result(id: string): Promise<{ view: JobView; png: Buffer | undefined } | undefined> {
    return this.guarded(async () => {
      const view = await this.view(id);
      if (!view) return undefined;
      const png = view.result ? ((await this.redis.getBuffer(keys.result(id))) ?? undefined) : undefined;
      if (view.result && !png) throw new HttpError(404, `job ${id}'s result was removed`);
      return { view, png };
    });
  }

  // ---- Taking and ending jobs -----------------------------------------------------------------

  /** Seconds until a running job is likely to end: the soonest estimate among them. */
  private async retryAfter(): Promise<number> {
    const ids = await this.redis.lrange(this.queue.keys.active as string, 0, 50);
    const etas: number[] = [];
    for (const id of ids) {
      const r = await this.record(id);
      const eta = r && etaNow(r);
      if (eta !== null && eta !== undefined) etas.push(eta);
    }
    const soonest = etas.length === 0 ? 10 : Math.min(...etas);
    return Math.min(600, Math.max(1, Math.ceil(soonest)));
  }

  /** The admission script (store.ts) for `client`, taking a place for `reserve` when given. */
  private async admit(client: string, reserve: string): Promise<void> {
    const { rate, jobsPerClient } = this.ctx.admission;
    const [code, a = 0, b = 0] = await this.redis.admit(
      keys.active(client),
      keys.taken(client),
      keys.reserved,
      this.queue.keys.wait as string,
      this.queue.keys.active as string,
      Date.now(),
      rate.windowMs,
      rate.max,
      jobsPerClient,
      this.ctx.maxWaiting,
      client === "local" ? "0" : "1",
      reserve,
    );
    if (code === 1) throw lineFull(b, a, await this.retryAfter());
    if (code === 2) throw overShare(a);
    if (code === 3) throw overRate(rate, a);
  }

  assertMayQueue(client: string): Promise<void> {
    return this.guarded(() => this.admit(client, ""));
  }

  async add(n: NewJob): Promise<{ state: JobState; position: number | null }> {
    return this.guarded(async () => {
      await this.admit(n.client, n.id);
      const uploads = [n.spec.content, ...n.spec.styles];
      try {
        const spec: StoredSpec = {
          content: { name: n.spec.content.name, width: n.spec.content.width, height: n.spec.content.height },
          styles: n.spec.styles.map((s) => ({ name: s.name, width: s.width, height: s.height })),
          options: n.spec.options,
          command: n.spec.command,
          iterations: n.spec.iterations,
          steps: n.steps,
        };
        const write = this.redis.multi();
        uploads.forEach((u, i) => {
          write.set(keys.upload(n.id, i), fs.readFileSync(u.file), "EX", LIVE_SECONDS);
        });
        write.hset(keys.record(n.id), {
          spec: JSON.stringify(spec),
          client: n.client,
          created: Date.now(),
          state: "",
          iteration: 0,
          frame: 0,
        });
        write.expire(keys.record(n.id), LIVE_SECONDS);
        await write.exec();
        const keep = { age: Math.ceil(this.ctx.expiryMs / 1000) };
        await this.queue.add("stylize", {}, { jobId: n.id, removeOnComplete: keep, removeOnFail: keep });
      } catch (e) {
        // Not taken after all: its place, its count against the client and its files go.
        await this.redis
          .multi()
          .del(keys.record(n.id), ...uploads.map((_, i) => keys.upload(n.id, i)))
          .srem(keys.active(n.client), n.id)
          .zrem(keys.taken(n.client), n.id)
          .zrem(keys.reserved, n.id)
          .exec()
          .catch(() => {});
        throw e;
      }
      await this.redis.zrem(keys.reserved, n.id);
      fs.rmSync(n.dir, { recursive: true, force: true });
      const r = (await this.record(n.id)) as JobRecord;
      return this.live(n.id, r);
    });
  }

  /** Ends a job that no worker runs (token ''), telling every server's followers. */
  private async finishHere(
    id: string,
    r: JobRecord,
    state: "failed" | "cancelled",
    fields: Record<string, string>,
  ): Promise<void> {
    const ended = await finishJob(
      this.redis,
      id,
      { client: r.client, uploads: r.spec.styles.length + 1 },
      {
        token: "",
        state,
        keepSeconds: this.ctx.expiryMs / 1000,
        png: state === "cancelled" ? "checkpoint" : undefined,
        fields,
      },
    );
    if (ended) {
      this.ctx.metrics.jobEnded("queue", state);
      await this.producer.publishEvent({ eventName: "ended", jobId: id }, MAX_EVENTS);
    }
  }

  async cancel(id: string): Promise<CancelAnswer | undefined> {
    return this.guarded(async () => {
      const r = await this.record(id);
      if (!r) return undefined;
      if (r.state !== undefined) {
        // A finished job: its result is removed now rather than at its expiry.
        await this.redis.del(keys.record(id), keys.losses(id), keys.preview(id), keys.result(id));
        await this.queue.remove(id).catch(() => 0);
        return { id, state: r.state, removed: true };
      }
      await this.redis.hset(keys.record(id), "cancel", "1");
      const state = await this.queue.getJobState(id);
      if (state !== "active" && (await this.queue.remove(id)) === 1) {
        // It was waiting: it ends now, keeping the picture of an earlier run if it had one.
        await this.finishHere(id, r, "cancelled", {});
        const after = await this.record(id);
        return { id, state: after?.state ?? "cancelled" };
      }
      // It runs (or is being taken): the worker that has it stops at its next step.
      await this.producer.publishEvent({ eventName: "cancel", jobId: id }, MAX_EVENTS);
      return { id, state: "cancelling" };
    });
  }

  async counts(): Promise<LineCounts> {
    return this.guarded(async () => {
      const c = await this.queue.getJobCounts("wait", "prioritized", "delayed", "active");
      return {
        waiting: (c.wait ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0),
        running: c.active ?? 0,
      };
    });
  }

  async health(): Promise<{ ok: boolean; detail: string }> {
    try {
      await this.redis.ping();
      const workers = (await this.queue.getWorkers()).length;
      const { waiting, running } = await this.counts();
      return {
        ok: true,
        detail: `queue at ${this.address.shown}: ${workers} worker connection${workers === 1 ? "" : "s"}, ${running} running, ${waiting} waiting${workers === 0 ? " (no worker: jobs wait until one starts)" : ""}`,
      };
    } catch (e) {
      return { ok: false, detail: `queue at ${this.address.shown} does not answer: ${(e as Error).message}` };
    }
  }

  async workerMetrics(): Promise<MetricsJson[]> {
    const names = await this.redis.smembers(keys.metricsWorkers);
    if (names.length === 0) return [];
    const texts = await this.redis.mget(...names.map(keys.metrics));
    const gone = names.filter((_, i) => texts[i] === null);
    if (gone.length > 0) await this.redis.srem(keys.metricsWorkers, ...gone);
    return texts.filter((t): t is string => t !== null).map((t) => JSON.parse(t) as MetricsJson);
  }

  async close(): Promise<void> {
    this.followers.clear();
    // A clean close waits for Redis; one that is gone gets a disconnect after a moment instead of a hang.
    let timer: NodeJS.Timeout | undefined;
    const parts = [this.events, this.queue, this.producer];
    await Promise.race([
      Promise.allSettled(parts.map((p) => p.close())),
      new Promise((resolve) => {
        timer = setTimeout(resolve, 2000);
      }),
    ]);
    clearTimeout(timer);
    for (const p of parts) void p.disconnect().catch(() => {});
    this.redis.disconnect();
  }
}
