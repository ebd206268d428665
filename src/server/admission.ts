import { HttpError } from "./http-error.js";

export interface AdmissionLimits {
  /** Uploads being received at once, from all clients together; one more gets 503. */
  uploads: number;
  /** Uploads one client may send at once; one more gets 429. */
  uploadsPerClient: number;
  /** Jobs one client may have waiting or running; one more gets 429. */
  jobsPerClient: number;
  /** Jobs taken from one client in a window (refused requests do not count). */
  rate: { max: number; windowMs: number };
}

export const DEFAULT_ADMISSION: AdmissionLimits = {
  uploads: 8,
  uploadsPerClient: 2,
  jobsPerClient: 4,
  rate: { max: 30, windowMs: 60_000 },
};

/** The refusal of a job from a client with `active` jobs waiting or running, its most. */
export function overShare(active: number): HttpError {
  return new HttpError(
    429,
    `you have ${active} jobs waiting or running, the most one address may have: wait for one to end, or cancel one`,
    undefined,
    10,
  );
}

/** The refusal of a job from a client whose jobs taken fill its window: `wait` seconds until one leaves it. */
export function overRate(rate: { max: number; windowMs: number }, wait: number): HttpError {
  return new HttpError(
    429,
    `too many jobs from your address: at most ${rate.max} in ${Math.round(rate.windowMs / 1000)} s. Try again in ${wait} s`,
    undefined,
    wait,
  );
}

/** The refusal of a job when the line is full: `wait` seconds until a slot is likely to free. */
export function lineFull(running: number, waiting: number, wait: number): HttpError {
  return new HttpError(
    429,
    `the server is busy: ${running} running and ${waiting} waiting, the most it queues. Try again in about ${wait} s`,
    undefined,
    wait,
  );
}

/**
 * Who may send a job now: the server's share of each client (hosts.ts
 * clientKey). Counted here by hand because the limits are on what is in
 * flight and on jobs taken, which a request counter (@fastify/rate-limit)
 * cannot see. The machine's own user ("local") is held only to the limits of
 * everyone together: its programs can use any loopback address, so per-address
 * limits cannot tell them apart, and they would only hold the owner back.
 */
export class Admission {
  private readonly uploading = new Map<string, number>();
  private uploadingTotal = 0;
  /** When each client's jobs were taken, within the window. */
  private readonly taken = new Map<string, number[]>();

  constructor(readonly limits: AdmissionLimits) {}

  private limited(client: string): boolean {
    return client !== "local";
  }

  /** Takes a place for an upload, or refuses (503 for the server, 429 for the client); returns its release. */
  startUpload(client: string): () => void {
    const mine = this.uploading.get(client) ?? 0;
    if (this.limited(client) && mine >= this.limits.uploadsPerClient) {
      throw new HttpError(
        429,
        `you are sending ${mine} uploads already, the most one address may send at once: wait for them to finish`,
        undefined,
        5,
      );
    }
    if (this.uploadingTotal >= this.limits.uploads) {
      throw new HttpError(
        503,
        `the server is receiving ${this.uploadingTotal} uploads already, the most it takes at once: try again in a few seconds`,
        undefined,
        5,
      );
    }
    this.uploading.set(client, mine + 1);
    this.uploadingTotal++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.uploadingTotal--;
      const left = (this.uploading.get(client) ?? 1) - 1;
      if (left === 0) this.uploading.delete(client);
      else this.uploading.set(client, left);
    };
  }

  /** Refuses (429) a client with `active` jobs waiting or running, or one whose jobs taken fill the window. */
  assertMayQueue(client: string, active: number): void {
    if (!this.limited(client)) return;
    if (active >= this.limits.jobsPerClient) throw overShare(active);
    const { max, windowMs } = this.limits.rate;
    const recent = this.recent(client);
    if (recent.length >= max) {
      throw overRate(
        this.limits.rate,
        Math.max(1, Math.ceil(((recent[0] as number) + windowMs - Date.now()) / 1000)),
      );
    }
  }

  /** Counts a job taken from a client against its rate. */
  accepted(client: string): void {
    if (!this.limited(client)) return;
    this.taken.set(client, [...this.recent(client), Date.now()]);
  }

  /** Forgets clients whose window has passed. */
  sweep(): void {
    for (const client of [...this.taken.keys()]) {
      if (this.recent(client).length === 0) this.taken.delete(client);
    }
  }

  private recent(client: string): number[] {
    const since = Date.now() - this.limits.rate.windowMs;
    const kept = (this.taken.get(client) ?? []).filter((t) => t > since);
    if (kept.length > 0) this.taken.set(client, kept);
    else this.taken.delete(client);
    return kept;
  }
}
