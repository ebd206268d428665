import { Redis } from "ioredis";
import { keys } from "../../src/queue/store.js";
import type { JobView } from "../../src/server/job-view.js";
import { type RunningCli, startCli } from "./child.js";
import { WEIGHTS_DIR } from "./shared.js";

/**
 * `stylegram worker` in a process of its own, with the settings of the tests: one compute thread
 * (the machine's cores are shared by every process of a test), a checkpoint after every iteration
 * and a short takeover, so that a killed worker's job moves on in seconds.
 */
export function startWorker(url: string, name: string, extra: string[] = []): RunningCli {
  return startCli([
    "worker",
    "--queue",
    url,
    "--name",
    name,
    "--threads",
    "1",
    "--checkpoint-every",
    "0",
    "--takeover-after",
    "3",
    "--weights",
    WEIGHTS_DIR,
    ...extra,
  ]);
}

/** Resolves once a CLI has printed `pattern` on stdout (rejects if it exits first). */
export async function printed(cli: RunningCli, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pattern.test(cli.printed().stdout)) {
    if (cli.child.exitCode !== null || cli.child.signalCode !== null)
      throw new Error(`exited before ${pattern}:\n${cli.printed().stderr}`);
    if (Date.now() > end) throw new Error(`no ${pattern} after ${timeoutMs} ms:\n${cli.printed().stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts workers and waits until each takes jobs. */
export async function startWorkers(
  url: string,
  names: string[],
  extra: string[] = [],
): Promise<RunningCli[]> {
  const workers = names.map((n) => startWorker(url, n, extra));
  await Promise.all(workers.map((w) => printed(w, /taking jobs/)));
  return workers;
}

/** Ends workers that are still running (SIGKILL: a test's end keeps nothing). */
export async function killAll(clis: RunningCli[]): Promise<void> {
  for (const c of clis) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
  await Promise.all(clis.map((c) => c.done));
}

/** A job's record in Redis as the workers wrote it: who ran it, how often, and from where the last run resumed. */
export async function recordOf(
  redis: Redis,
  id: string,
): Promise<{ worker: string; runs: number; resumedFrom: number; state: string }> {
  const h = await redis.hgetall(keys.record(id));
  return {
    worker: h.worker ?? "",
    runs: Number(h.runs ?? 0),
    resumedFrom: Number(h.resumedFrom ?? 0),
    state: h.state ?? "",
  };
}

/** Polls until `until` holds, with what was last seen in the message when it does not in time. */
export async function until<T>(
  look: () => Promise<T>,
  holds: (v: T) => boolean,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await look();
    if (holds(v)) return v;
    if (Date.now() > end)
      throw new Error(`${what}: not after ${timeoutMs} ms; last seen ${JSON.stringify(v).slice(0, 400)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export const ENDED = (v: Pick<JobView, "state">) => ["done", "failed", "cancelled"].includes(v.state);

export { Redis };
