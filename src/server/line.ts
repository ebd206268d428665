import { randomBytes } from "node:crypto";
import type { ScaleStep } from "../stylize/scales.js";
import type { JobView } from "./job-view.js";
import type { JobEvent, JobSpec, JobState } from "./jobs.js";
import type { MetricsJson } from "./metrics.js";

/**
 * A job's id, which is also the capability to read and cancel it: 128 random bits, written as
 * 8-4-4-4-12 hex digits (the shape of a UUID, without a version's fixed bits).
 */
export function newJobId(): string {
  const hex = randomBytes(16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A job whose uploads have arrived and passed the library's checks, for the line to take. */
export interface NewJob {
  id: string;
  /** Its folder in the server's private folder, with the uploads; the line owns it from now on. */
  dir: string;
  spec: JobSpec;
  /** The scales and their iterations, as the library's checks planned them (a resumed run needs them). */
  steps: ScaleStep[];
  /** Whom the job counts against (hosts.ts clientKey). */
  client: string;
}

/** A job's events as a page follows them: the whole job first, then each event until its ending. */
export interface JobFeed {
  snapshot: JobView;
  /** Calls `listener` with every later event; returns the unsubscribe. Not called for a finished job. */
  subscribe(listener: (e: JobEvent) => void): () => void;
}

/** What DELETE did: a job that had not ended is being cancelled; one that had is removed. */
export interface CancelAnswer {
  id: string;
  state: JobState;
  removed?: true;
}

/** Counts of the line now, for /metrics and /healthz. */
export interface LineCounts {
  waiting: number;
  running: number;
}

/**
 * The line of jobs behind the HTTP API, whichever runs them: this process's worker processes
 * (embedded-line.ts) or workers anywhere through a Redis queue (src/queue). The routes use only
 * this, so that both serve the same API; every method answers for any job id.
 */
export interface JobLine {
  /** How long a job is kept, for a 404's message: "its results expire ... after it ends". */
  readonly keeping: string;
  /** Refuses (an HttpError, 429) a job from `client` now: the line is full, or the client is over its share or rate. */
  assertMayQueue(client: string): Promise<void>;
  /** Takes a job (refusing it as assertMayQueue does), counted against its client's rate. */
  add(job: NewJob): Promise<{ state: JobState; position: number | null }>;
  /** The job as the API shows it; undefined when there is no such job (or it has expired). */
  view(id: string): Promise<JobView | undefined>;
  follow(id: string): Promise<JobFeed | undefined>;
  /** The latest preview frame (a JPEG); undefined when there is none (yet). */
  preview(id: string): Promise<Buffer | undefined>;
  /** The result's PNG, with the job's view; undefined when there is no such job. */
  result(id: string): Promise<{ view: JobView; png: Buffer | undefined } | undefined>;
  /** Cancels a job that has not ended, or removes a finished one and its result; undefined when there is no such job. */
  cancel(id: string): Promise<CancelAnswer | undefined>;
  counts(): Promise<LineCounts>;
  /** Whether the line can take jobs now (its store is reachable), and why not. */
  health(): Promise<{ ok: boolean; detail: string }>;
  /** The job metrics of the processes that run the jobs elsewhere (a queue's workers), for /metrics. */
  workerMetrics?(): Promise<MetricsJson[]>;
  /** A Redis client that @fastify/rate-limit counts requests in, so that its bound is the fleet's. */
  readonly rateLimitRedis?: unknown;
  /** Stops following and, for the embedded line, the work; what lives in a queue stays there. */
  close(): Promise<void>;
}
