/**
 * `stylegram serve --queue` and `stylegram worker` on a real redis-server (each test starts its own
 * on a free port in a temporary folder): the processes as a user starts them, jobs through the
 * HTTP API, a worker killed in the middle of a job.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { QueueEvents } from "bullmq";
import sharp from "sharp";
import { PREFIX, QUEUE_NAME } from "../src/queue/connection.js";
import type { JobView } from "../src/server/job-view.js";
import { stylize } from "../src/stylize/stylize.js";
import { startCli } from "./support/child.js";
import { ENDED, killAll, printed, Redis, recordOf, startWorkers, until } from "./support/queue.js";
import { needsRedis, startRedis, type TestRedis } from "./support/redis.js";
import { jobForm, tinyImages } from "./support/serve.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

const needs = { ...needsShared(), ...needsRedis() };

describe("a queue: one server, two workers", needs, () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => redis?.stop());

  test("six 64 px jobs all finish once with a downloadable result, although a worker is SIGKILLed in the middle of one: the other resumes it from its checkpoint, its count going on, its loss within 2% of an uninterrupted run", {
    timeout: 300_000,
  }, async (t) => {
    const serve = startCli(["serve", "--queue", redis.url, "--port", "0", "--weights", WEIGHTS_DIR]);
    const workers = await startWorkers(redis.url, ["w1", "w2"]);
    const client = new Redis(redis.url);
    const connection = { host: "127.0.0.1", port: redis.port };
    const events = new QueueEvents(QUEUE_NAME, { connection, prefix: PREFIX });
    const completions = new Map<string, number>();
    events.on("completed", ({ jobId }) => completions.set(jobId, (completions.get(jobId) ?? 0) + 1));
    try {
      await events.waitUntilReady();
      await printed(serve, /open http:\/\/localhost:(\d+)\//);
      const port = Number(/localhost:(\d+)/.exec(serve.printed().stdout)?.[1]);
      const base = `http://127.0.0.1:${port}`;
      const { photo, painting } = await tinyImages(64);
      // The long job is the one killed: a resumed L-BFGS rebuilds its history over its next steps,
      // which 150 iterations leave room for (40 would not: 5% apart). The short ones keep the other worker busy.
      const long = { size: 64, iterations: 150 };
      const short = { size: 64, iterations: 12 };
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await fetch(`${base}/api/jobs`, {
          method: "POST",
          body: jobForm({
            content: [photo, `photo-${i}.png`],
            styles: [painting],
            options: i === 0 ? long : short,
          }),
        });
        assert.equal(r.status, 202, await r.clone().text());
        ids.push(((await r.json()) as { id: string }).id);
      }
      const victim = ids[0] as string;
      const view = async (id: string) => (await (await fetch(`${base}/api/jobs/${id}`)).json()) as JobView;
      // The uninterrupted run, with the library in this process: what the killed job should reach.
      const reference = uninterrupted(photo, painting, long);

      const seen = await until(
        () => view(victim),
        (v) => v.iteration >= 40,
        120_000,
        "the long job past 40",
      );
      const before = await recordOf(client, victim);
      const killed = workers.find((_, i) => `w${i + 1}` === before.worker);
      assert.ok(killed, `the job's worker (${before.worker}) is one of ours`);
      killed.child.kill("SIGKILL");
      const killedAt = Date.now();
      const back = await until(
        () => recordOf(client, victim),
        (r) => r.runs === 2,
        60_000,
        "the killed job taken over",
      );
      t.diagnostic(
        `killed at iteration ${seen.iteration}; taken over by ${back.worker} ${((Date.now() - killedAt) / 1000).toFixed(1)} s later (after the short job it was running), from iteration ${back.resumedFrom}`,
      );

      const ended = await Promise.all(
        ids.map((id) => until(() => view(id), ENDED, 240_000, `job ${id} ending`)),
      );
      for (const v of ended) {
        assert.equal(v.state, "done", `${v.id}: ${v.error}`);
        assert.equal(v.iteration, v.id === victim ? 150 : 12);
        const r = await fetch(`${base}${v.result?.png}`);
        assert.equal(r.status, 200);
        const meta = await sharp(Buffer.from(await r.arrayBuffer())).metadata();
        assert.equal(Math.max(meta.width ?? 0, meta.height ?? 0), 64);
      }
      await until(
        async () => completions.size,
        (n) => n === 6,
        10_000,
        "every completion heard",
      );
      assert.deepEqual([...completions.values()], [1, 1, 1, 1, 1, 1], "each job completed exactly once");

      const record = await recordOf(client, victim);
      assert.equal(record.runs, 2, "the killed job ran twice: once cut off, once resumed");
      assert.notEqual(record.worker, before.worker, "the other worker finished it");
      assert.ok(
        record.resumedFrom >= 30 && record.resumedFrom <= seen.iteration + 10,
        `resumed from its checkpoint (iteration ${record.resumedFrom}), not from the start; killed past ${seen.iteration}`,
      );
      const resumed = ended.find((v) => v.id === victim) as JobView;
      assert.deepEqual(
        resumed.losses.map(([i]) => i),
        Array.from({ length: 150 }, (_, i) => i + 1),
        "its loss history counts on from the checkpoint, every iteration once",
      );
      const expected = await reference;
      const gap = Math.abs((resumed.loss as number) - expected) / expected;
      t.diagnostic(
        `final loss ${resumed.loss} resumed, ${expected} uninterrupted: ${(100 * gap).toFixed(2)}% apart`,
      );
      assert.ok(gap < 0.02, `within 2% of the uninterrupted run (${(100 * gap).toFixed(2)}%)`);
    } finally {
      await events.close();
      client.disconnect();
      await killAll([serve, ...workers]);
    }
  });
});

/** The final loss of a job run by the library in one go, as a worker runs it (one thread). */
async function uninterrupted(photo: Buffer, painting: Buffer, options: { size: number; iterations: number }) {
  const decode = async (b: Buffer) => {
    const { data, info } = await sharp(b).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data) };
  };
  const result = await stylize({
    content: await decode(photo),
    styles: [await decode(painting)],
    weights: WEIGHTS_DIR,
    threads: 1,
    ...options,
  });
  return result.loss.total;
}
