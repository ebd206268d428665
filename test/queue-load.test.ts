/**
 * A load test of the queue: 30 small jobs from 10 clients on 3 workers, through one server, with
 * nothing lost or done twice. Its figure (jobs, clients, workers, time) is printed as a diagnostic.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { QueueEvents } from "bullmq";
import { resolveWeightsFor } from "../src/models/resolve.js";
import { PREFIX, parseQueueUrl, QUEUE_NAME } from "../src/queue/connection.js";
import { redisLine } from "../src/queue/redis-line.js";
import { buildQueueServer } from "../src/server/app.js";
import type { JobView } from "../src/server/job-view.js";
import { ENDED, killAll, Redis, recordOf, startWorkers, until } from "./support/queue.js";
import { needsRedis, startRedis } from "./support/redis.js";
import { jobForm, tinyImages } from "./support/serve.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

const JOBS = 30;
const CLIENTS = 10;
const WORKERS = 3;
const ITERATIONS = 3;

test(`${JOBS} jobs from ${CLIENTS} clients on ${WORKERS} workers: each done once, with its result`, {
  ...needsShared(),
  ...needsRedis(),
  timeout: 540_000,
}, async (t) => {
  const redis = await startRedis();
  const weights = await resolveWeightsFor({ path: WEIGHTS_DIR });
  const server = await buildQueueServer({ weights, maxWaiting: JOBS }, redisLine(parseQueueUrl(redis.url)));
  const workers = await startWorkers(
    redis.url,
    Array.from({ length: WORKERS }, (_, i) => `load${i + 1}`),
  );
  const events = new QueueEvents(QUEUE_NAME, {
    connection: { host: "127.0.0.1", port: redis.port },
    prefix: PREFIX,
  });
  const completed = new Map<string, number>();
  events.on("completed", ({ jobId }) => completed.set(jobId, (completed.get(jobId) ?? 0) + 1));
  const client = new Redis(redis.url);
  try {
    await events.waitUntilReady();
    const { photo, painting } = await tinyImages(64);
    const started = performance.now();
    let refusals = 0;
    // Each client sends its share in turn; a refusal (its share of the line full: 429; too many uploads at once: 503) waits and tries again.
    const perClient = JOBS / CLIENTS;
    const ids = (
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, c) => {
          const mine: string[] = [];
          while (mine.length < perClient) {
            const r = await server.app.inject({
              method: "POST",
              url: "/api/jobs",
              remoteAddress: `10.9.0.${c + 1}`,
              payload: jobForm({
                content: [photo, `client-${c}-${mine.length}.png`],
                styles: [painting],
                options: { size: 64, iterations: ITERATIONS },
              }),
            });
            if (r.statusCode === 429 || r.statusCode === 503) {
              refusals++;
              await new Promise((resolve) => setTimeout(resolve, 500));
              continue;
            }
            assert.equal(r.statusCode, 202, r.body);
            mine.push(r.json().id);
          }
          return mine;
        }),
      )
    ).flat();
    assert.equal(new Set(ids).size, JOBS, "every job has an id of its own");
    const views = await Promise.all(
      ids.map((id) =>
        until(
          async () => (await server.app.inject({ url: `/api/jobs/${id}` })).json() as JobView,
          ENDED,
          480_000,
          `job ${id}`,
        ),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    for (const v of views) {
      assert.equal(v.state, "done", `${v.id}: ${v.error}`);
      assert.equal(v.iteration, ITERATIONS);
      assert.deepEqual(
        v.losses.map(([i]) => i),
        [1, 2, 3],
      );
      const png = await server.app.inject({ url: `/api/jobs/${v.id}/result` });
      assert.equal(png.statusCode, 200);
    }
    await until(
      async () => completed.size,
      (n) => n === JOBS,
      10_000,
      "every completion heard",
    );
    assert.ok(
      [...completed.values()].every((n) => n === 1),
      "no job completed twice",
    );
    const byWorker = new Map<string, number>();
    for (const id of ids) {
      const r = await recordOf(client, id);
      assert.equal(r.runs, 1, `job ${id} ran once`);
      byWorker.set(r.worker, (byWorker.get(r.worker) ?? 0) + 1);
    }
    assert.equal(byWorker.size, WORKERS, "every worker took jobs");
    t.diagnostic(
      `load: ${JOBS} jobs (64 px, ${ITERATIONS} iterations) from ${CLIENTS} clients on ${WORKERS} workers in ${seconds.toFixed(1)} s ` +
        `(${((JOBS / seconds) * 60).toFixed(0)} jobs a minute; by worker ${[...byWorker.values()].join("/")}; ` +
        `${refusals} refusals (a client over its share, uploads at once), retried); none lost, none done twice`,
    );
  } finally {
    await events.close();
    client.disconnect();
    await killAll(workers);
    await server.app.close();
    await redis.stop();
  }
});
