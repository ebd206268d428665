import type { Redis } from "ioredis";
import type { JobView } from "../server/job-view.js";
import { resultLinks } from "../server/job-view.js";
import type { JobEvent, JobState } from "../server/jobs.js";
import type { JobOptions } from "../server/options.js";
import type { ScaleStep } from "../stylize/scales.js";
import { PREFIX } from "./connection.js";

/**
 * What lives in Redis beside BullMQ's own keys, one job at a time: its record (a hash: the spec, the
 * progress, the ending), its loss history, its uploads, its latest preview frame, its checkpoint and
 * its result. Every key expires: a live job's after LIVE_SECONDS (a job left waiting that long is
 * dropped), a finished one's after the server's expiry. BullMQ's job carries only the id: the
 * queue is the order and the locks, the record is what a page sees.
 */
export const keys = {
  record: (id: string) => `${PREFIX}:job:${id}`,
  losses: (id: string) => `${PREFIX}:job:${id}:losses`,
  preview: (id: string) => `${PREFIX}:job:${id}:preview`,
  result: (id: string) => `${PREFIX}:job:${id}:result`,
  checkpoint: (id: string) => `${PREFIX}:job:${id}:checkpoint`,
  /** Upload 0 is the content, 1.. the styles. */
  upload: (id: string, i: number) => `${PREFIX}:job:${id}:upload:${i}`,
  /** Ids of a client's jobs that wait or run. */
  active: (client: string) => `${PREFIX}:client:${client}:active`,
  /** When a client's jobs were taken (a sorted set of ids by time), for its rate. */
  taken: (client: string) => `${PREFIX}:client:${client}:taken`,
  /** Jobs being added (their uploads stored) and not yet in BullMQ's line: counted as waiting. */
  reserved: `${PREFIX}:reserved`,
  /** Each worker's metrics (prom-client's JSON), refreshed while it runs. */
  metrics: (worker: string) => `${PREFIX}:metrics:${worker}`,
  metricsWorkers: `${PREFIX}:metrics-workers`,
};

/** How long a job that has not ended is kept: its uploads and record, waiting or running. */
export const LIVE_SECONDS = 24 * 3600;

/** What the server stores of a job's uploads: names and sizes (the bytes are under keys.upload). */
export interface StoredSpec {
  content: { name: string; width: number; height: number };
  styles: { name: string; width: number; height: number }[];
  options: JobOptions;
  command: string;
  iterations: number;
  steps: ScaleStep[];
}

/** A job's record as read from its hash (every field a string there). */
export interface JobRecord {
  spec: StoredSpec;
  client: string;
  created: number;
  /** Set once, when it has ended. */
  state: "done" | "failed" | "cancelled" | undefined;
  cancel: boolean;
  owner: string | undefined;
  worker: string | undefined;
  /** How many times a worker has started it (more than one: it was resumed). */
  runs: number;
  iteration: number;
  loss: number | undefined;
  elapsed: number;
  /** Seconds left at `at` (ms since the epoch). */
  eta: number | undefined;
  at: number | undefined;
  stage: string | undefined;
  frame: number;
  error: string | undefined;
  width: number | undefined;
  height: number | undefined;
  finished: number | undefined;
  /** The iteration the last run resumed from (0: from the start). */
  resumedFrom: number;
}

const num = (v: string | undefined): number | undefined =>
  v === undefined || v === "" ? undefined : Number(v);

export function parseRecord(h: Record<string, string>): JobRecord | undefined {
  if (h.spec === undefined) return undefined;
  const state = h.state === "" ? undefined : (h.state as JobRecord["state"]);
  return {
    spec: JSON.parse(h.spec) as StoredSpec,
    client: h.client ?? "local",
    created: num(h.created) ?? 0,
    state,
    cancel: h.cancel === "1",
    owner: h.owner || undefined,
    worker: h.worker || undefined,
    runs: num(h.runs) ?? 0,
    iteration: num(h.iteration) ?? 0,
    loss: num(h.loss),
    elapsed: num(h.elapsed) ?? 0,
    eta: num(h.eta),
    at: num(h.at),
    stage: h.stage || undefined,
    frame: num(h.frame) ?? 0,
    error: h.error || undefined,
    width: num(h.width),
    height: num(h.height),
    finished: num(h.finished),
    resumedFrom: num(h.resumedFrom) ?? 0,
  };
}

export function previewUrl(id: string, frame: number): string | null {
  return frame > 0 ? `/api/jobs/${id}/preview?frame=${frame}` : null;
}

/** Seconds left now: the estimate at the last iteration, less the time since. */
export function etaNow(r: JobRecord, now = Date.now()): number | null {
  if (r.eta === undefined || r.at === undefined || r.iteration === 0) return null;
  return Math.max(0, r.eta - (now - r.at) / 1000);
}

/** The job as the API shows it (job-view.ts), from its record, its losses and BullMQ's state of it. */
export function viewOf(
  id: string,
  r: JobRecord,
  losses: [number, number][],
  live: { state: JobState; position: number | null },
  expiryMs: number,
): JobView {
  const state = r.state ?? live.state;
  const finished = r.state !== undefined;
  return {
    id,
    state,
    position: finished ? null : live.position,
    iteration: r.iteration,
    iterations: r.spec.iterations,
    loss: r.loss ?? null,
    error: r.error ?? null,
    elapsed: r.elapsed,
    eta: state === "done" ? 0 : finished || state !== "running" ? null : etaNow(r),
    stage: r.stage ?? null,
    preview: previewUrl(id, r.frame),
    losses,
    content: r.spec.content.name,
    styles: r.spec.styles.map((s) => s.name),
    options: r.spec.options,
    command: r.spec.command,
    result:
      finished && r.width !== undefined
        ? resultLinks(id, { width: r.width, height: r.height as number })
        : null,
    expiresAt: r.finished === undefined ? null : new Date(r.finished + expiryMs).toISOString(),
  };
}

/** The event that ends a job's stream, from its finished record. */
export function endingEvent(r: JobRecord): JobEvent {
  if (r.state === "failed") return { type: "failed", error: r.error ?? "the job failed" };
  if (r.state === "cancelled") {
    return {
      type: "cancelled",
      iterations: r.iteration,
      loss: r.loss ?? null,
      result: r.width === undefined ? null : { width: r.width, height: r.height as number },
    };
  }
  return {
    type: "done",
    iterations: r.iteration,
    loss: r.loss as number,
    elapsed: r.elapsed,
    width: r.width as number,
    height: r.height as number,
  };
}

export function parseLosses(entries: string[]): [number, number][] {
  return entries.map((e) => {
    const [i, l] = e.split(" ");
    return [Number(i), Number(l)];
  });
}

/**
 * The scripts that change a job's record, each atomic in Redis. A record is written by the worker
 * whose BullMQ lock token is its `owner`, and by nobody else while it runs: a worker that lost its
 * lock (thought dead, its job taken over) is refused, so that a job ends once, with one result.
 */
const SCRIPTS = {
  /**
   * A worker takes a job. KEYS: record, losses, checkpoint. ARGV: token, worker, live seconds.
   * Returns -1 when the record is gone (expired or removed), 0 when the job has ended, 2 when it was
   * cancelled before this start, else 1; the losses after the checkpoint's iteration are dropped
   * (they are done again).
   */
  claim: {
    numberOfKeys: 3,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if (redis.call('HGET', KEYS[1], 'state') or '') ~= '' then return 0 end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 2 end
local from = tonumber(redis.call('HGET', KEYS[3], 'iteration') or '0')
redis.call('LTRIM', KEYS[2], 0, from - 1)
if from == 0 then redis.call('DEL', KEYS[2]) end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'worker', ARGV[2], 'iteration', from, 'resumedFrom', from, 'stage', '')
redis.call('HINCRBY', KEYS[1], 'runs', 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1`,
  },
  /**
   * Progress from the job's owner. KEYS: record, losses. ARGV: token, a loss entry or '', then
   * field-value pairs. Returns 0 when the writer no longer owns the job (or it has ended).
   */
  progress: {
    numberOfKeys: 2,
    lua: `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if (redis.call('HGET', KEYS[1], 'state') or '') ~= '' then return 0 end
if ARGV[2] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[2]); redis.call('EXPIRE', KEYS[2], ${LIVE_SECONDS}) end
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
return 1`,
  },
  /** A preview frame from the job's owner. KEYS: record, preview. ARGV: token, frame, JPEG. */
  preview: {
    numberOfKeys: 2,
    lua: `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ${LIVE_SECONDS})
redis.call('HSET', KEYS[1], 'frame', ARGV[2])
return 1`,
  },
  /** A checkpoint from the job's owner. KEYS: record, checkpoint. ARGV: token, PNG, iteration, scale, seconds, width, height. */
  checkpoint: {
    numberOfKeys: 2,
    lua: `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if (redis.call('HGET', KEYS[1], 'state') or '') ~= '' then return 0 end
redis.call('HSET', KEYS[2], 'png', ARGV[2], 'iteration', ARGV[3], 'scale', ARGV[4], 'seconds', ARGV[5], 'width', ARGV[6], 'height', ARGV[7])
redis.call('EXPIRE', KEYS[2], ${LIVE_SECONDS})
return 1`,
  },
  /**
   * Ends a job, once. KEYS: record, losses, preview, result, checkpoint, the client's active set,
   * then the uploads. ARGV: token ('' for the server: a job that no worker runs), state, seconds to
   * keep, the result's PNG ('' for none, '=' for the checkpoint's, with its size and iteration),
   * id, then field-value pairs.
   * Returns 1 when this call ended it.
   */
  finish: {
    numberOfKeys: -1,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if (redis.call('HGET', KEYS[1], 'state') or '') ~= '' then return 0 end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local png = ARGV[4]
if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
if png == '=' then
  local c = redis.call('HMGET', KEYS[5], 'png', 'width', 'height', 'iteration')
  png = c[1] or ''
  if png ~= '' then redis.call('HSET', KEYS[1], 'width', c[2], 'height', c[3], 'iteration', c[4]) end
end
if png ~= '' then redis.call('SET', KEYS[4], png, 'EX', ARGV[3]) end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'owner', '')
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
redis.call('DEL', KEYS[5])
for i = 7, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('SREM', KEYS[6], ARGV[5])
return 1`,
  },
  /**
   * Admission of a job from a client, for the whole fleet at once. KEYS: the client's active set,
   * its taken set, the reserved set, BullMQ's wait list, BullMQ's active list. ARGV: now (ms), the
   * rate's window (ms) and most jobs in it, jobs a client may have waiting or running, jobs that may
   * wait, whether the client is limited ('1'), and the job's id to reserve ('' to check only).
   * Returns {0} when taken (or allowed), {1, waiting, running} for a full line, {2, active} for a
   * client at its share, {3, seconds to wait} for a client at its rate.
   */
  admit: {
    numberOfKeys: 5,
    lua: `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 60000)
local waiting = redis.call('LLEN', KEYS[4]) + redis.call('ZCARD', KEYS[3])
if waiting >= tonumber(ARGV[5]) then return {1, waiting, redis.call('LLEN', KEYS[5])} end
if ARGV[6] == '1' then
  local active = redis.call('SCARD', KEYS[1])
  if active >= tonumber(ARGV[4]) then return {2, active} end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {3, math.max(1, math.ceil((tonumber(first[2]) + tonumber(ARGV[2]) - now) / 1000))}
  end
end
if ARGV[7] ~= '' then
  redis.call('SADD', KEYS[1], ARGV[7])
  redis.call('EXPIRE', KEYS[1], ${LIVE_SECONDS})
  if ARGV[6] == '1' then
    redis.call('ZADD', KEYS[2], now, ARGV[7])
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
  redis.call('ZADD', KEYS[3], now, ARGV[7])
end
return {0}`,
  },
} as const;

type Arg = string | number | Buffer;

/** The scripts as methods of a connection (ioredis' defineCommand: EVALSHA, loaded again after a restart). */
export interface Scripts {
  claim(record: string, losses: string, checkpoint: string, ...args: Arg[]): Promise<number>;
  progress(record: string, losses: string, ...args: Arg[]): Promise<number>;
  preview(record: string, preview: string, ...args: Arg[]): Promise<number>;
  checkpoint(record: string, checkpoint: string, ...args: Arg[]): Promise<number>;
  finish(numberOfKeys: number, ...keysAndArgs: Arg[]): Promise<number>;
  admit(...keysAndArgs: Arg[]): Promise<number[]>;
}

export function withScripts(redis: Redis): Redis & Scripts {
  for (const [name, s] of Object.entries(SCRIPTS)) {
    // A negative count: the number of keys is the call's first argument.
    redis.defineCommand(
      name,
      s.numberOfKeys < 0 ? { lua: s.lua } : { numberOfKeys: s.numberOfKeys, lua: s.lua },
    );
  }
  return redis as Redis & Scripts;
}

/** Ends a job in its record (finish above); resolves whether this call ended it. */
export async function finishJob(
  redis: Redis & Scripts,
  id: string,
  r: { client: string; uploads: number },
  ending: {
    token: string;
    state: "done" | "failed" | "cancelled";
    keepSeconds: number;
    png: Buffer | "checkpoint" | undefined;
    fields: Record<string, string | number>;
  },
): Promise<boolean> {
  const uploads = Array.from({ length: r.uploads }, (_, i) => keys.upload(id, i));
  const jobKeys = [
    keys.record(id),
    keys.losses(id),
    keys.preview(id),
    keys.result(id),
    keys.checkpoint(id),
    keys.active(r.client),
    ...uploads,
  ];
  const png = ending.png === undefined ? "" : ending.png === "checkpoint" ? "=" : ending.png;
  const ended = await redis.finish(
    jobKeys.length,
    ...jobKeys,
    ending.token,
    ending.state,
    Math.max(1, Math.ceil(ending.keepSeconds)),
    png,
    id,
    "finished",
    Date.now(),
    ...Object.entries(ending.fields).flat(),
  );
  return ended === 1;
}
