/**
 * What a slow, withheld, oversized or malformed upload meets, over real
 * sockets where the timing is the point: a request timeout, limits on uploads
 * in flight and on bytes per request, each file checked as it arrives, 400 for
 * broken multipart, and a close that ends every connection at once.
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { VggWeights } from "../src/network/weights.js";
import { buildServer, type ServerOptions, type StylegramServer } from "../src/server/app.js";
import { encodeForm, jobDirs, jobForm, rawPost, tinyImages, waitForJob } from "./support/serve.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `p`, or a failure naming `what` once `ms` have passed. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `check` holds (polling), or fails naming `what`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

describe("stylegram serve's limits on uploads", needsShared(), () => {
  let weights: VggWeights;
  let photo: Buffer;
  let painting: Buffer;
  const servers: StylegramServer[] = [];
  const listen = async (o: Partial<ServerOptions> = {}) => {
    const s = await buildServer({ weights, ...o });
    servers.push(s);
    await s.app.listen({ port: 0, host: "127.0.0.1" });
    return { s, port: (s.app.server.address() as { port: number }).port };
  };
  const small = { size: 48, iterations: 1 };

  before(async () => {
    weights = loadManifestWeights(WEIGHTS_DIR);
    ({ photo, painting } = await tinyImages());
  });
  after(async () => {
    for (const s of servers) await s.app.close();
  });

  test("an upload that trickles in is closed at the request timeout, while other requests answer at once", async () => {
    const { s, port } = await listen({ requestTimeoutMs: 1000 });
    const { body, contentType } = await encodeForm(
      jobForm({ content: photo, styles: [painting], options: small }),
    );
    const slow = rawPost(
      port,
      "/api/jobs",
      { "content-type": contentType, "content-length": String(body.length) },
      body.subarray(0, 200),
    );
    let sent = 200;
    // One byte every 50 ms: never idle, never done.
    const trickle = setInterval(() => {
      if (!slow.socket.destroyed && sent < body.length - 1) slow.socket.write(body.subarray(sent, ++sent));
    }, 50);
    const started = performance.now();
    try {
      for (let i = 0; i < 4; i++) {
        const t = performance.now();
        const r = await fetch(`http://localhost:${port}/api/options`);
        assert.equal(r.status, 200);
        assert.ok(performance.now() - t < 500, `a GET took ${Math.round(performance.now() - t)} ms`);
        await sleep(150);
      }
      await within(slow.closed, 6000, "the trickling upload was closed");
    } finally {
      clearInterval(trickle);
    }
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 3, `closed after ${seconds.toFixed(1)} s`);
    assert.match(slow.answer(), /^HTTP\/1\.1 408/);
    await until(() => jobDirs(s).length === 0, 2000, "its folder was removed");
  });

  test("a withheld upload: a wrong file is refused as soon as it has arrived, not when the rest comes", async () => {
    const { port } = await listen();
    const { body, contentType } = await encodeForm(
      jobForm({ content: [Buffer.from("just some words"), "photo.jpg"], styles: [painting], options: small }),
    );
    // Everything up to the middle of the style file; the rest never comes.
    const cut = body.indexOf(Buffer.from('name="style"')) + 200;
    const r = rawPost(
      port,
      "/api/jobs",
      { "content-type": contentType, "content-length": String(body.length) },
      body.subarray(0, cut),
    );
    await within(r.closed, 3000, "the answer and the close");
    assert.match(r.answer(), /^HTTP\/1\.1 415/);
    assert.match(r.answer(), /content: photo\.jpg is not an image stylegram reads/);
    assert.match(r.answer(), /connection: close/i);
  });

  test("bytes per request: a Content-Length over the limit is refused before the body, and so are files over it together", async () => {
    const { s, port } = await listen({ uploads: { fileBytes: 800 * 1024, requestBytes: 2 ** 20 } });
    const r = rawPost(
      port,
      "/api/jobs",
      { "content-type": "multipart/form-data; boundary=x", "content-length": String(500 * 2 ** 20) },
      Buffer.alloc(0),
    );
    await within(r.closed, 3000, "the refusal of a 500 MB request");
    assert.match(r.answer(), /^HTTP\/1\.1 413/);
    assert.match(r.answer(), /over the 1 MB limit of one request together/);

    // Two noise images of about 600 KB each: each under the file limit, both over the request's.
    const noise = (seed: number) =>
      sharp(Buffer.from(Array.from({ length: 450 * 450 * 3 }, (_, i) => (i * 7919 + seed * 104729) % 251)), {
        raw: { width: 450, height: 450, channels: 3 },
      })
        .png({ compressionLevel: 0 })
        .toBuffer();
    const [a, b] = [await noise(1), await noise(2)];
    assert.ok(a.length > 550 * 1024 && a.length < 800 * 1024, `${a.length} bytes`);
    const both = await s.app.inject({
      method: "POST",
      url: "/api/jobs",
      payload: jobForm({ content: a, styles: [b], options: small }),
    });
    assert.equal(both.statusCode, 413, both.body);
    assert.match(both.json().error, /the files are over the 1 MB limit of one request together/);
    assert.deepEqual(jobDirs(s), []);
  });

  test("uploads in flight: at most so many from one client (429) and in all (503); the next is taken once one ends", async () => {
    const { s } = await listen({ uploadsInFlight: { total: 3, perClient: 2 } });
    const { body, contentType } = await encodeForm(
      jobForm({ content: photo, styles: [painting], options: small }),
    );
    // Uploads that send half their body and wait.
    const stalled = (client: string) => {
      const payload = new PassThrough();
      payload.write(body.subarray(0, body.length >> 1));
      const answer = s.app.inject({
        method: "POST",
        url: "/api/jobs",
        payload,
        headers: { "content-type": contentType, "content-length": String(body.length) },
        remoteAddress: client,
      });
      return { payload, answer };
    };
    const post = (client: string) =>
      s.app.inject({
        method: "POST",
        url: "/api/jobs",
        payload: jobForm({ content: photo, styles: [painting], options: small }),
        remoteAddress: client,
      });
    const first = [stalled("10.0.0.1"), stalled("10.0.0.1")];
    await sleep(100);
    const third = await within(post("10.0.0.1"), 2000, "the third upload of one client");
    assert.equal(third.statusCode, 429, third.body);
    assert.match(
      third.json().error,
      /you are sending 2 uploads already, the most one address may send at once/,
    );
    assert.match(String(third.headers["retry-after"]), /^\d+$/);

    const other = stalled("10.0.0.2");
    await sleep(100);
    const fourth = await within(post("10.0.0.3"), 2000, "an upload over the server's limit");
    assert.equal(fourth.statusCode, 503, fourth.body);
    assert.match(fourth.json().error, /the server is receiving 3 uploads already, the most it takes at once/);

    // One ends: its place is free again.
    const done = first[0] as { payload: PassThrough; answer: Promise<{ statusCode: number; body: string }> };
    done.payload.end(body.subarray(body.length >> 1));
    assert.equal((await done.answer).statusCode, 202);
    const next = await post("10.0.0.3");
    assert.equal(next.statusCode, 202, next.body);
    for (const u of [first[1], other]) u?.payload.end(body.subarray(body.length >> 1));
    await Promise.all([first[1]?.answer, other.answer]);
    for (const id of s.jobs.keys()) await waitForJob(s, id);
  });

  test("malformed multipart is a 400 naming the problem, not a 500", async () => {
    const { s } = await listen();
    const { body, contentType } = await encodeForm(
      jobForm({ content: photo, styles: [painting], options: small }),
    );
    const cases: [string, string, Buffer][] = [
      ["no boundary", "multipart/form-data", body],
      ["an unterminated body", contentType, body.subarray(0, body.length - 40)],
      ["garbage", contentType, Buffer.from("this is not multipart at all")],
    ];
    for (const [what, type, payload] of cases) {
      const r = await s.app.inject({
        method: "POST",
        url: "/api/jobs",
        payload,
        headers: { "content-type": type },
      });
      assert.equal(r.statusCode, 400, `${what}: ${r.body}`);
      assert.match(r.json().error, /not well-formed multipart\/form-data|cut off before it ended/, what);
    }
    assert.deepEqual(jobDirs(s), []);
  });

  test("closing the server ends an upload in the middle and an event stream at once", async () => {
    const { s, port } = await listen();
    const job = await s.app.inject({
      method: "POST",
      url: "/api/jobs",
      payload: jobForm({ content: photo, styles: [painting], options: { size: 48, iterations: 5000 } }),
    });
    const id = (job.json() as { id: string }).id;
    await waitForJob(s, id, (j) => j.iteration > 0);
    const events = await fetch(`http://localhost:${port}/api/jobs/${id}/events`);
    const reader = events.body?.getReader();
    const { body, contentType } = await encodeForm(
      jobForm({ content: photo, styles: [painting], options: small }),
    );
    const slow = rawPost(
      port,
      "/api/jobs",
      { "content-type": contentType, "content-length": String(body.length) },
      body.subarray(0, 300),
    );
    await sleep(200);
    const started = performance.now();
    await within(s.app.close(), 5000, "close");
    await within(slow.closed, 1000, "the upload's connection closed");
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 3, `close took ${seconds.toFixed(1)} s`);
    // The stream ended rather than hanging.
    for (;;) {
      const chunk = await within(reader?.read() ?? Promise.resolve({ done: true }), 1000, "the stream's end");
      if (chunk.done) break;
    }
  });
});
