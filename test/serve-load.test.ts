/**
 * A load test of stylegram serve on loopback: 20 jobs from 5 clients at once
 * (loopback addresses, all this machine's own: held only to the limits of
 * everyone together), tiny images, few iterations. Every job must finish or be
 * refused with Retry-After (429 for a full line, 503 for too many uploads at
 * once), none may be lost, and the server's memory must stay bounded.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import { buildServer, type StylegramServer } from "../src/server/app.js";
import { drained, jobForm, tinyImages } from "./support/serve.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

const CLIENTS = 5;
const JOBS_EACH = 4;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request from `localAddress` (a client of its own), with the whole answer. */
function request(
  port: number,
  localAddress: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        localAddress,
        method: options.method ?? "GET",
        path: options.path,
        headers: options.headers,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error(`${options.path}: no answer in 120 s`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** The peak resident memory (VmHWM) of each node process this one started: the server's workers. */
function childPeakRss(): number[] {
  const out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" });
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter(([, comm]) => comm === "node")
    .map(([pid]) => {
      const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    });
}

/** The server-sent events of a job, followed to their end: the event names in order. */
async function follow(port: number, localAddress: string, id: string): Promise<string[]> {
  const answer = await request(port, localAddress, { path: `/api/jobs/${id}/events` });
  assert.equal(answer.status, 200);
  return [...answer.body.matchAll(/^event: (\w+)$/gm)].map((m) => m[1] as string);
}

describe("stylegram serve under load, on loopback", needsShared(), () => {
  let server: StylegramServer;
  let port: number;
  let body: Buffer;
  let contentType: string;

  before(async () => {
    server = await buildServer({ weights: loadManifestWeights(WEIGHTS_DIR), frameMs: 0 });
    await server.app.listen({ port: 0, host: "127.0.0.1" });
    port = (server.app.server.address() as { port: number }).port;
    const { photo, painting } = await tinyImages(40);
    // The multipart body as a browser would send it, made once.
    const encoded = new Request("http://localhost/", {
      method: "POST",
      body: jobForm({ content: photo, styles: [painting], options: { size: 32, iterations: 3 } }),
    });
    body = Buffer.from(await encoded.arrayBuffer());
    contentType = encoded.headers.get("content-type") as string;
  });
  after(() => server.app.close());

  test("20 jobs from 5 clients at once: each finishes or is refused with Retry-After, none is lost, memory stays bounded", async () => {
    const submit = (client: string) =>
      request(port, client, {
        method: "POST",
        path: "/api/jobs",
        headers: { "content-type": contentType, "content-length": String(body.length) },
        body,
      });
    // A first job warms onnxruntime and sharp up, so that what follows measures the server, not the start.
    const warm = await submit("127.0.0.2");
    assert.equal(warm.status, 202, warm.body);
    assert.deepEqual((await follow(port, "127.0.0.2", JSON.parse(warm.body).id)).at(-1), "done");
    const rssBefore = process.memoryUsage.rss();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    }, 50);
    // A failed assertion below must not leave it keeping the test's process alive.
    sampler.unref();

    const started = performance.now();
    const clients = Array.from({ length: CLIENTS }, (_, c) => `127.0.0.${c + 2}`);
    const outcomes = await Promise.all(
      clients.flatMap((client) =>
        Array.from({ length: JOBS_EACH }, async () => {
          const r = await submit(client);
          if (r.status === 429 || r.status === 503) {
            assert.match(String(r.headers["retry-after"]), /^\d+$/, "a refusal says when to come back");
            assert.match(JSON.parse(r.body).error, /busy|receiving \d+ uploads already/);
            return { client, refused: true, events: [] as string[] };
          }
          assert.equal(r.status, 202, r.body);
          const id = JSON.parse(r.body).id as string;
          const events = await follow(port, client, id);
          const final = JSON.parse((await request(port, client, { path: `/api/jobs/${id}` })).body);
          assert.equal(final.state, "done", JSON.stringify(final));
          const png = await request(port, client, { path: `/api/jobs/${id}/result` });
          assert.equal(png.status, 200);
          return { client, refused: false, events };
        }),
      ),
    );
    clearInterval(sampler);
    const seconds = (performance.now() - started) / 1000;
    const accepted = outcomes.filter((o) => !o.refused);
    assert.equal(outcomes.length, CLIENTS * JOBS_EACH, "every request was answered");
    assert.ok(accepted.length >= 10, `only ${accepted.length} of 20 were taken`);
    for (const o of accepted) {
      assert.equal(o.events[0], "snapshot");
      assert.equal(o.events.at(-1), "done", `${o.client}: ${o.events.join(",")}`);
      assert.ok(o.events.filter((e) => e === "progress").length >= 1, o.events.join(","));
    }
    assert.deepEqual(await drained(server), { waiting: 0, running: 0 });
    // Let the allocator settle, then compare with the warm server.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const growth = process.memoryUsage.rss() - rssBefore;
    // The jobs ran in the server's worker process (one slot): its peak, from the kernel.
    const workerPeaks = childPeakRss();
    console.log(
      `load: ${accepted.length} done, ${outcomes.length - accepted.length} refused (429 or 503) in ${seconds.toFixed(1)} s; ` +
        `RSS ${Math.round(rssBefore / 2 ** 20)} MiB before, peak ${Math.round(rssPeak / 2 ** 20)} MiB, ` +
        `${Math.round(growth / 2 ** 20)} MiB more after; worker process peak ${workerPeaks.map((b) => Math.round(b / 2 ** 20)).join(", ")} MiB`,
    );
    assert.equal(workerPeaks.length, 1, "one worker process for one slot");
    assert.ok((workerPeaks[0] as number) < 1.5 * 2 ** 30, "the worker's peak stays bounded");
    assert.ok(
      rssPeak - rssBefore < 400 * 2 ** 20,
      `peak RSS grew by ${Math.round((rssPeak - rssBefore) / 2 ** 20)} MiB`,
    );
    assert.ok(growth < 150 * 2 ** 20, `RSS grew by ${Math.round(growth / 2 ** 20)} MiB and stayed`);
  });
});
