/**
 * Access and operations of a server that others reach: tokens (401 before anything is read, the
 * page's cookie), limits that hold across the servers of one queue, GET /metrics and /healthz.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { resolveWeightsFor } from "../src/models/resolve.js";
import type { VggWeights } from "../src/network/weights.js";
import { parseQueueUrl } from "../src/queue/connection.js";
import { redisLine } from "../src/queue/redis-line.js";
import { buildQueueServer, buildServer, type ServerBase, type ServerOptions } from "../src/server/app.js";
import type { JobView } from "../src/server/job-view.js";
import { ENDED, killAll, startWorkers, until } from "./support/queue.js";
import { needsRedis, startRedis, type TestRedis } from "./support/redis.js";
import { encodeForm, jobDirs, jobForm, rawPost, tinyImages } from "./support/serve.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

const TOKEN = "a-token-of-the-tests-0123456789";

describe("tokens", needsShared(), () => {
  let weights: VggWeights;
  let photo: Buffer;
  let painting: Buffer;
  before(async () => {
    weights = await resolveWeightsFor({ path: WEIGHTS_DIR });
    ({ photo, painting } = await tinyImages(64));
  });

  test("with tokens, the API and /metrics need one (401 before the upload is read); the page and /healthz do not; the page's login sets an HttpOnly cookie that works too", async () => {
    const s = await buildServer({ weights, tokens: [TOKEN, "another-token-0123456789"] });
    try {
      assert.equal((await s.app.inject({ url: "/healthz" })).statusCode, 200);
      const page = await s.app.inject({ url: "/" });
      assert.notEqual(page.statusCode, 401, "the page itself is public: it asks for the token");
      for (const url of ["/api/options", "/metrics", "/api/jobs/00000000-0000-0000-0000-000000000000"]) {
        const r = await s.app.inject({ url });
        assert.equal(r.statusCode, 401, url);
        assert.equal(r.headers["www-authenticate"], 'Bearer realm="stylegram"');
        assert.match(r.json().error, /needs a token: send it as 'Authorization: Bearer TOKEN'/);
      }
      const wrong = await s.app.inject({
        url: "/api/options",
        headers: { authorization: `Bearer ${TOKEN}x` },
      });
      assert.equal(wrong.statusCode, 401);
      const ok = await s.app.inject({ url: "/api/options", headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(ok.statusCode, 200);

      // A refused upload is not read: the answer comes while most of the body is still unsent.
      await s.app.listen({ port: 0, host: "127.0.0.1" });
      const { port } = s.app.server.address() as { port: number };
      const { body, contentType } = await encodeForm(jobForm({ content: photo, styles: [painting] }));
      const raw = rawPost(
        port,
        "/api/jobs",
        { "content-type": contentType, "content-length": String(body.length) },
        body.subarray(0, 100),
      );
      await raw.closed;
      assert.match(raw.answer(), /^HTTP\/1\.1 401/);
      assert.deepEqual(jobDirs(s), [], "nothing was made for it");

      const login = await s.app.inject({
        method: "POST",
        url: "/api/login",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(login.statusCode, 200);
      const cookie = String(login.headers["set-cookie"]);
      assert.match(cookie, /^stylegram_token=.+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+/);
      const badLogin = await s.app.inject({
        method: "POST",
        url: "/api/login",
        headers: { authorization: "Bearer nope" },
      });
      assert.equal(badLogin.statusCode, 401);
      const post = await s.app.inject({
        method: "POST",
        url: "/api/jobs",
        headers: { cookie: cookie.split(";")[0] as string },
        payload: jobForm({ content: photo, styles: [painting], options: { size: 32, iterations: 1 } }),
      });
      assert.equal(post.statusCode, 202, post.body);
      const id = post.json().id as string;
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "128 random bits");
      const metrics = await s.app.inject({ url: "/metrics", headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(metrics.statusCode, 200);
    } finally {
      await s.app.close();
    }
  });
});

test(
  "the token a server off loopback makes for itself holds for other machines; this machine's programs need none",
  needsShared(),
  async () => {
    const weights = await resolveWeightsFor({ path: WEIGHTS_DIR });
    const s = await buildServer({ weights, tokens: [TOKEN], tokensFromOtherMachines: true });
    try {
      assert.equal((await s.app.inject({ url: "/api/options" })).statusCode, 200, "from loopback");
      assert.equal((await s.app.inject({ url: "/api/options", remoteAddress: "192.0.2.7" })).statusCode, 401);
      const other = await s.app.inject({
        url: "/api/options",
        remoteAddress: "192.0.2.7",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(other.statusCode, 200);
    } finally {
      await s.app.close();
    }
  },
);

describe("one queue, two servers", { ...needsShared(), ...needsRedis() }, () => {
  let weights: VggWeights;
  let photo: Buffer;
  let painting: Buffer;
  let redis: TestRedis;
  const servers: ServerBase[] = [];
  before(async () => {
    weights = await resolveWeightsFor({ path: WEIGHTS_DIR });
    ({ photo, painting } = await tinyImages(64));
    redis = await startRedis();
  });
  after(async () => {
    for (const s of servers) await s.app.close();
    await redis?.stop();
  });
  const serve = async (o: Partial<ServerOptions> = {}) => {
    const s = await buildQueueServer({ weights, ...o }, redisLine(parseQueueUrl(redis.url)));
    servers.push(s);
    return s;
  };
  const post = (s: ServerBase, client: string, iterations = 3) =>
    s.app.inject({
      method: "POST",
      url: "/api/jobs",
      remoteAddress: client,
      payload: jobForm({ content: photo, styles: [painting], options: { size: 32, iterations } }),
    });

  test("the limits hold across the servers: a client's share and rate, and the jobs that may wait", async () => {
    const limits = { jobsPerClient: 2, rateLimit: { max: 3, windowMs: 60_000 }, maxWaiting: 4 };
    const [a, b] = [await serve(limits), await serve(limits)] as [ServerBase, ServerBase];
    // No worker runs: every job taken waits.
    assert.equal((await post(a, "10.1.1.1")).statusCode, 202);
    assert.equal((await post(b, "10.1.1.1")).statusCode, 202);
    const share = await post(a, "10.1.1.1");
    assert.equal(share.statusCode, 429);
    assert.match(share.json().error, /you have 2 jobs waiting or running/);
    // Cancelled, a job frees its share, but still counts against the rate.
    const ids = [] as string[];
    const third = await post(b, "10.2.2.2");
    ids.push(third.json().id);
    await a.app.inject({ method: "DELETE", url: `/api/jobs/${ids[0]}`, remoteAddress: "10.2.2.2" });
    const fourth = await post(a, "10.2.2.2");
    assert.equal(fourth.statusCode, 202);
    await b.app.inject({ method: "DELETE", url: `/api/jobs/${fourth.json().id}` });
    assert.equal((await post(b, "10.2.2.2")).statusCode, 202);
    const rate = await post(a, "10.2.2.2");
    assert.equal(rate.statusCode, 429);
    assert.match(rate.json().error, /too many jobs from your address: at most 3 in 60 s/);
    // 3 wait now (two of 10.1.1.1, one of 10.2.2.2); one more fills the line, for both servers.
    assert.equal((await post(a, "10.3.3.3")).statusCode, 202);
    const full = await post(b, "10.4.4.4");
    assert.equal(full.statusCode, 429);
    assert.match(full.json().error, /the server is busy: 0 running and 4 waiting/);
    assert.ok(Number(full.headers["retry-after"]) >= 1);
    const view = (await a.app.inject({ url: `/api/jobs/${fourth.json().id}` })).json() as JobView;
    assert.equal(view.state, "cancelled", "a job cancelled on one server is cancelled on the other");
  });

  test("GET /metrics in Prometheus' format: the line, and each worker's jobs, durations and evaluations; /healthz says 503 when Redis is gone", async () => {
    const s = await serve();
    const workers = await startWorkers(redis.url, ["m1"]);
    try {
      // The jobs of the test above still wait: m1 runs them too.
      const id = (await post(s, "local", 5)).json().id as string;
      const done = await until(
        async () => (await s.app.inject({ url: `/api/jobs/${id}` })).json() as JobView,
        ENDED,
        120_000,
        "the job's end",
      );
      assert.equal(done.state, "done");
      const text = await until(
        async () => (await s.app.inject({ url: "/metrics" })).body,
        (t) => /stylegram_evaluations_total\{worker="m1"\} \d+/.test(t),
        20_000,
        "the worker's metrics",
      );
      const metrics = await s.app.inject({ url: "/metrics" });
      assert.match(String(metrics.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
      assert.match(text, /^# TYPE stylegram_jobs_waiting gauge\nstylegram_jobs_waiting \d+$/m);
      assert.match(text, /^stylegram_jobs_running \d+$/m);
      assert.match(text, /^stylegram_jobs_total\{state="done"\} [1-9]\d*$/m);
      assert.match(text, /^stylegram_job_duration_seconds_count\{worker="m1"\} [1-9]\d*$/m);
      assert.match(text, /^stylegram_evaluations_per_second\{worker="m1"\} \d/m);
      const health = await s.app.inject({ url: "/healthz" });
      assert.equal(health.statusCode, 200);
      assert.match(health.json().detail, /1 worker connection/);
      await redis.kill();
      const down = await s.app.inject({ url: "/healthz" });
      assert.equal(down.statusCode, 503);
      assert.match(down.json().detail, /does not answer/);
    } finally {
      await killAll(workers);
    }
  });
});
