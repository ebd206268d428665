/**
 * The server's thread stays free while jobs compute (onnxruntime evaluates
 * synchronously, so jobs run in worker processes): requests answer at once
 * during a job's evaluations, during the worst requests, and around a cancel;
 * a cancel during a long set-up ends that work at once, and a slot is given
 * only when its job's work has stopped, so repeated submit-and-cancel runs no
 * more than the concurrency.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { VggWeights } from "../src/network/weights.js";
import { buildServer, type ServerOptions, type StylegramServer } from "../src/server/app.js";
import { type JobJson, jobForm, tinyImages } from "./support/serve.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** This process's children that are node: the servers' worker processes. */
function workerProcesses(): number[] {
  const out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" });
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter(([, comm]) => comm === "node")
    .map(([pid]) => Number(pid));
}

describe("stylegram serve stays free while jobs compute", needsShared(), () => {
  let weights: VggWeights;
  let photo: Buffer;
  let painting: Buffer;
  const servers: StylegramServer[] = [];
  const listen = async (o: Partial<ServerOptions> = {}) => {
    const s = await buildServer({ weights, ...o });
    servers.push(s);
    await s.app.listen({ port: 0, host: "127.0.0.1" });
    const url = `http://localhost:${(s.app.server.address() as { port: number }).port}`;
    return { s, url };
  };
  /**
   * GET /api/options every `everyMs` until `until` resolves: the longest wait for an answer, in ms.
   * The server runs in this process, so a thread it blocked would block these pings too: the
   * wait counts from the last answer (less the pause), not from when the ping was sent.
   */
  const slowestWhile = async (url: string, until: Promise<unknown>, everyMs = 100) => {
    let slowest = 0;
    let done = false;
    void until.finally(() => {
      done = true;
    });
    let last = performance.now();
    while (!done) {
      await sleep(everyMs);
      assert.equal((await fetch(`${url}/api/options`)).status, 200);
      const now = performance.now();
      slowest = Math.max(slowest, now - last - everyMs);
      last = now;
    }
    return slowest;
  };
  const job = async (url: string, id: string) =>
    (await (await fetch(`${url}/api/jobs/${id}`)).json()) as JobJson;
  const until = async (url: string, id: string, check: (j: JobJson) => boolean, ms: number) => {
    const end = Date.now() + ms;
    for (;;) {
      const j = await job(url, id);
      if (check(j)) return j;
      if (Date.now() > end)
        throw new Error(`job ${id}: still ${j.state} at iteration ${j.iteration} after ${ms} ms`);
      await sleep(50);
    }
  };
  const submit = async (url: string, form: FormData) => {
    const r = await fetch(`${url}/api/jobs`, { method: "POST", body: form });
    assert.equal(r.status, 202, await r.clone().text());
    return ((await r.json()) as { id: string }).id;
  };

  before(async () => {
    weights = loadManifestWeights(WEIGHTS_DIR);
    ({ photo, painting } = await tinyImages(256));
  });
  after(async () => {
    for (const s of servers) await s.app.close();
  });

  test("while a job's evaluations take seconds, other requests answer at once; a cancel keeps its picture", async () => {
    const { url } = await listen();
    const id = await submit(
      url,
      jobForm({ content: photo, styles: [painting], options: { size: 512, iterations: 50 } }),
    );
    await until(url, id, (j) => j.iteration >= 1, 120_000);
    const second = until(url, id, (j) => j.iteration >= 2 || j.state !== "running", 120_000);
    const slowest = await slowestWhile(url, second);
    console.log(`slowest answer during an evaluation at 512 px: ${Math.round(slowest)} ms`);
    assert.ok(slowest < 1000, `an answer took ${Math.round(slowest)} ms`);

    const del = await fetch(`${url}/api/jobs/${id}`, { method: "DELETE" });
    const said = (await del.json()) as { state: string };
    if (said.state === "cancelling") {
      assert.equal(del.status, 202);
      const ended = await until(url, id, (j) => j.state === "cancelled", 60_000);
      assert.ok(ended.result !== null && ended.iteration >= 1, JSON.stringify(ended.result));
    }
  });

  test("the worst requests are refused at once, and others answer meanwhile", async () => {
    const { url } = await listen();
    // A valid 1x20000 PNG as the style: its size was once searched one pixel at a time, for minutes.
    const strip = await sharp({ create: { width: 20_000, height: 1, channels: 3, background: "#246" } })
      .png()
      .toBuffer();
    const worst = [
      jobForm({ content: photo, styles: [painting], options: { size: 64, styleScale: 1e-300 } }),
      jobForm({ content: photo, styles: [[strip, "strip.png"]], options: { size: 64 } }),
      jobForm({ content: photo, styles: [[strip, "strip.png"]], options: { size: 4096, styleScale: 8 } }),
    ];
    for (const form of worst) {
      const started = performance.now();
      const answer = fetch(`${url}/api/jobs`, { method: "POST", body: form });
      const slowest = await slowestWhile(url, answer, 20);
      const r = await answer;
      const seconds = (performance.now() - started) / 1000;
      assert.equal(r.status, 400, await r.text());
      assert.ok(seconds < 5, `refused after ${seconds.toFixed(1)} s`);
      assert.ok(slowest < 1000, `an answer took ${Math.round(slowest)} ms meanwhile`);
    }
  });

  test("a cancel during a long set-up ends its work at once; the slot is free only then, so submit-and-cancel never runs more than the concurrency", async () => {
    const { s, url } = await listen({ concurrency: 1 });
    const before = new Set(workerProcesses());
    // A style image at 4x the size: its targets take one evaluation of many seconds to set up.
    const big = await sharp(`${IMAGES_DIR}/starry_night.jpg`).resize(512).jpeg().toBuffer();
    const slow = () => jobForm({ content: photo, styles: [big], options: { size: 512, styleScale: 4 } });
    for (let i = 0; i < 3; i++) {
      const id = await submit(url, slow());
      await until(url, id, (j) => j.stage === "objective", 60_000);
      await sleep(500);
      const order: string[] = [];
      s.jobs.get(id)?.subscribe((e) => order.push(e.type));
      const next = await submit(
        url,
        jobForm({ content: photo, styles: [painting], options: { size: 64, iterations: 2 } }),
      );
      s.jobs.get(next)?.subscribe((e) => order.push(`next:${e.type}`));
      const started = performance.now();
      const del = await fetch(`${url}/api/jobs/${id}`, { method: "DELETE" });
      assert.equal(del.status, 202);
      const stopped = until(url, id, (j) => j.state === "cancelled", 10_000);
      const slowest = await slowestWhile(url, stopped, 20);
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `cancel during set-up ${i + 1}: stopped in ${seconds.toFixed(2)} s; slowest answer ${Math.round(slowest)} ms`,
      );
      assert.ok(seconds < 3, `the set-up stopped ${seconds.toFixed(1)} s after the cancel`);
      assert.ok(slowest < 1000, `an answer took ${Math.round(slowest)} ms`);
      assert.equal((await job(url, id)).result, null, "nothing to keep before the first iteration");
      // The next job got the slot only once the cancelled one's work had stopped.
      await until(url, next, (j) => j.state === "done", 60_000);
      assert.ok(order.indexOf("cancelled") < order.indexOf("next:running"), order.join(" "));
      const alive = workerProcesses().filter((p) => !before.has(p));
      assert.ok(alive.length <= 1, `${alive.length} worker processes with a concurrency of 1`);
    }
  });
});
