/**
 * What a queue keeps when a part of it stops: a worker's SIGTERM hands its job back with its
 * checkpoint, a server restarted (or a second one) answers for the same jobs, Redis killed and
 * restarted with AOF loses no job, and a cancel reaches the worker that runs the job.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { resolveWeightsFor } from "../src/models/resolve.js";
import type { VggWeights } from "../src/network/weights.js";
import { parseQueueUrl } from "../src/queue/connection.js";
import { redisLine } from "../src/queue/redis-line.js";
import { buildQueueServer, type ServerBase } from "../src/server/app.js";
import type { JobView } from "../src/server/job-view.js";
import { ENDED, killAll, Redis, recordOf, startWorkers, until } from "./support/queue.js";
import { needsRedis, startRedis, type TestRedis } from "./support/redis.js";
import { jobForm, tinyImages } from "./support/serve.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

const needs = { ...needsShared(), ...needsRedis() };

describe("a queue when its parts stop", needs, () => {
  let weights: VggWeights;
  let photo: Buffer;
  let painting: Buffer;
  const servers: ServerBase[] = [];
  const redises: TestRedis[] = [];
  before(async () => {
    weights = await resolveWeightsFor({ path: WEIGHTS_DIR });
    ({ photo, painting } = await tinyImages(64));
  });
  after(async () => {
    for (const s of servers) await s.app.close();
    for (const r of redises) await r.stop();
  });
  const redisFor = async (o: { aof?: boolean } = {}) => {
    const r = await startRedis(o);
    redises.push(r);
    return r;
  };
  const serverOn = async (redis: TestRedis) => {
    const s = await buildQueueServer({ weights }, redisLine(parseQueueUrl(redis.url)));
    servers.push(s);
    return s;
  };
  const post = async (s: ServerBase, iterations: number) => {
    const r = await s.app.inject({
      method: "POST",
      url: "/api/jobs",
      payload: jobForm({ content: photo, styles: [painting], options: { size: 64, iterations } }),
    });
    assert.equal(r.statusCode, 202, r.body);
    return (r.json() as { id: string }).id;
  };
  const view = async (s: ServerBase, id: string) =>
    (await s.app.inject({ url: `/api/jobs/${id}` })).json() as JobView;

  test("SIGTERM on a worker hands its job back at once with a checkpoint; the other worker resumes it", async (t) => {
    const redis = await redisFor();
    const server = await serverOn(redis);
    const workers = await startWorkers(redis.url, ["w1", "w2"]);
    const client = new Redis(redis.url);
    try {
      const id = await post(server, 80);
      await until(
        () => view(server, id),
        (v) => v.iteration >= 15,
        90_000,
        "iteration 15",
      );
      const first = await recordOf(client, id);
      const stopping = workers.find((_, i) => `w${i + 1}` === first.worker);
      assert.ok(stopping);
      const signalled = performance.now();
      stopping.child.kill("SIGTERM");
      const { code, stderr } = await stopping.done;
      const exited = (performance.now() - signalled) / 1000;
      assert.equal(code, 0, stderr);
      assert.match(stderr, /handed back at iteration \d+/);
      const resumed = await until(
        () => recordOf(client, id),
        (r) => r.runs === 2 && r.worker !== first.worker,
        30_000,
        "the job taken by the other worker",
      );
      assert.ok(resumed.resumedFrom >= 15, `resumed from ${resumed.resumedFrom}`);
      const going = await until(
        () => view(server, id),
        (v) => v.iteration > resumed.resumedFrom,
        60_000,
        "its first iteration after the resume",
      );
      const resumedAfter = (performance.now() - signalled) / 1000;
      t.diagnostic(
        `SIGTERM: the worker exited in ${exited.toFixed(2)} s; the job went on from iteration ${resumed.resumedFrom} on the other worker ${resumedAfter.toFixed(2)} s after the signal (iteration ${going.iteration})`,
      );
      const done = await until(() => view(server, id), ENDED, 90_000, "the job's end");
      assert.equal(done.state, "done", done.error ?? "");
      assert.equal(done.iteration, 80);
    } finally {
      client.disconnect();
      await killAll(workers);
    }
  });

  test("a server restarted in the middle of a job, and a second server, answer for it: its events, its progress and its result", async () => {
    const redis = await redisFor();
    const first = await serverOn(redis);
    const second = await serverOn(redis);
    const workers = await startWorkers(redis.url, ["w1"]);
    try {
      const id = await post(first, 60);
      await until(
        () => view(first, id),
        (v) => v.iteration >= 5,
        90_000,
        "iteration 5",
      );
      await first.app.close();
      servers.splice(servers.indexOf(first), 1);
      // What a page's EventSource gets from the other server: the job so far, then its live events.
      await second.app.listen({ port: 0, host: "127.0.0.1" });
      const { port } = second.app.server.address() as { port: number };
      const stream = await fetch(`http://127.0.0.1:${port}/api/jobs/${id}/events`);
      const text = await stream.text();
      const snapshot = JSON.parse(/event: snapshot\ndata: (.*)\n/.exec(text)?.[1] ?? "{}") as JobView;
      assert.ok(snapshot.iteration >= 5, "the snapshot has the progress made before the restart");
      const later = [...text.matchAll(/event: progress\ndata: (.*)\n/g)].map(
        (m) => (JSON.parse(m[1] as string) as { iteration: number }).iteration,
      );
      assert.ok(later.length > 0 && (later.at(-1) as number) === 60, "live progress to the last iteration");
      assert.match(text, /event: done\ndata: \{"iterations":60/);
      const restarted = await serverOn(redis);
      const v = await view(restarted, id);
      assert.equal(v.state, "done");
      assert.equal(v.losses.length, 60);
      const png = await restarted.app.inject({ url: `/api/jobs/${id}/result` });
      assert.equal(png.statusCode, 200);
      assert.equal(png.headers["content-type"], "image/png");
    } finally {
      await killAll(workers);
    }
  });

  test("Redis killed and restarted with AOF in the middle of a job loses nothing: the job ends once, with its result", async (t) => {
    const redis = await redisFor({ aof: true });
    const server = await serverOn(redis);
    const workers = await startWorkers(redis.url, ["w1"]);
    const first = await post(server, 20);
    const client = () => new Redis(redis.url, { maxRetriesPerRequest: null });
    try {
      const id = await post(server, 60);
      await until(
        () => view(server, first),
        (v) => v.iteration >= 5,
        90_000,
        "iteration 5",
      );
      await redis.kill();
      const down = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const refused = await server.app.inject({ url: `/api/jobs/${id}` });
      assert.equal(refused.statusCode, 503, "while Redis is down: 503, not a hang");
      assert.match(refused.json().error, /did not answer/);
      await redis.restart();
      t.diagnostic(`Redis was down ${((performance.now() - down) / 1000).toFixed(1)} s`);
      for (const job of [first, id]) {
        const v = await until(
          () => view(server, job).catch(() => ({ state: "?" }) as unknown as JobView),
          ENDED,
          120_000,
          `job ${job} ending`,
        );
        assert.equal(v.state, "done", v.error ?? "");
        assert.equal((await server.app.inject({ url: `/api/jobs/${job}/result` })).statusCode, 200);
      }
      const c = client();
      assert.equal((await recordOf(c, id)).state, "done");
      c.disconnect();
    } finally {
      await killAll(workers);
    }
  });

  test("a cancel reaches the worker that runs the job within an evaluation; a waiting job's ends at once", async (t) => {
    const redis = await redisFor();
    const server = await serverOn(redis);
    const workers = await startWorkers(redis.url, ["w1"]);
    try {
      const running = await post(server, 400);
      const waiting = await post(server, 10);
      await until(
        () => view(server, running),
        (v) => v.iteration >= 5,
        90_000,
        "iteration 5",
      );
      const w = await server.app.inject({ method: "DELETE", url: `/api/jobs/${waiting}` });
      assert.equal(w.statusCode, 200);
      assert.equal(w.json().state, "cancelled");
      const asked = performance.now();
      const at = (await view(server, running)).iteration;
      const r = await server.app.inject({ method: "DELETE", url: `/api/jobs/${running}` });
      assert.equal(r.statusCode, 202);
      assert.equal(r.json().state, "cancelling");
      const ended = await until(() => view(server, running), ENDED, 30_000, "the cancel taking effect");
      const latency = performance.now() - asked;
      const perIteration = (ended.elapsed / ended.iteration) * 1000;
      t.diagnostic(
        `cancel across processes: ended ${latency.toFixed(0)} ms after the DELETE (an iteration takes ${perIteration.toFixed(0)} ms), at iteration ${ended.iteration} (asked at ${at})`,
      );
      assert.equal(ended.state, "cancelled");
      assert.ok(ended.iteration <= at + 3, `stopped at ${ended.iteration}, asked at ${at}`);
      assert.ok(ended.result, "the best picture so far is kept");
      assert.equal((await server.app.inject({ url: `/api/jobs/${running}/result` })).statusCode, 200);
      const gone = await view(server, waiting);
      assert.equal(gone.state, "cancelled");
      assert.equal(gone.iteration, 0, "the waiting job never ran");
    } finally {
      await killAll(workers);
    }
  });
});
