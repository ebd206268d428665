/**
 * The web app's HTTP API through Fastify's inject (no port): jobs that run to
 * the end, every kind of bad input refused with a clear 4xx naming the field,
 * the queue with concurrent jobs, cancel, limits, expiry and clean-up.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Value } from "@sinclair/typebox/value";
import sharp from "sharp";
import { STYLIZE_FLAG_NAMES } from "../src/cli/commands/stylize.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { VggWeights } from "../src/network/weights.js";
import { commandArguments, equivalentCommand, flagFor, shellWord } from "../src/options/command-line.js";
import { buildServer, type ServerOptions, type StylegramServer } from "../src/server/app.js";
import { JOB_OPTIONS } from "../src/server/options.js";
import { OWNER_FILE } from "../src/server/private-dir.js";
import { bombPng, drained, type JobJson, jobDirs, jobForm, tinyImages, waitForJob } from "./support/serve.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const shared = needsShared();

/** A job that runs long enough to be seen running, queued and cancelled (it never finishes in a test). */
const LONG = { size: 48, iterations: 5000 };

describe("the equivalent command", () => {
  test("every option of the API has a flag of the stylize command", () => {
    for (const key of Object.keys(JOB_OPTIONS.properties)) {
      assert.ok(STYLIZE_FLAG_NAMES.includes(flagFor(key).slice(2)), `${key} -> ${flagFor(key)} is no flag`);
    }
  });

  test("file names are quoted for the shell, and one starting with '-' cannot read as a flag", () => {
    assert.equal(shellWord("plain-name_1.jpg"), "plain-name_1.jpg");
    assert.equal(shellWord("my photo's.jpg"), `'my photo'\\''s.jpg'`);
    assert.equal(shellWord("$(rm -rf ~)"), "'$(rm -rf ~)'");
    assert.deepEqual(
      commandArguments({
        content: "-n.jpg",
        styles: ["a.png", "b.png"],
        output: "out.png",
        options: { contentLayers: [], styleBlend: [0.7, 0.3], originalColors: false, historySize: 10 },
      }),
      [
        "./-n.jpg",
        "a.png",
        "b.png",
        "-o",
        "out.png",
        "--content-layers",
        "none",
        "--style-blend",
        "0.7,0.3",
        "--history",
        "10",
      ],
    );
  });
});

describe("stylegram serve's API", shared, () => {
  let weights: VggWeights;
  let photo: Buffer;
  let painting: Buffer;
  const servers: StylegramServer[] = [];
  const serve = async (o: Partial<ServerOptions> = {}) => {
    const s = await buildServer({ weights, ...o });
    servers.push(s);
    return s;
  };
  const post = (
    s: StylegramServer,
    form: FormData,
    headers: Record<string, string> = {},
    remoteAddress?: string,
  ) =>
    s.app.inject({
      method: "POST",
      url: "/api/jobs",
      payload: form,
      headers,
      ...(remoteAddress ? { remoteAddress } : {}),
    });

  before(async () => {
    weights = loadManifestWeights(WEIGHTS_DIR);
    ({ photo, painting } = await tinyImages());
  });
  after(async () => {
    for (const s of servers) await s.app.close();
  });

  test("a job runs to the end: state, loss history, preview, events, result in three formats", async () => {
    const s = await serve({ frameMs: 0 });
    const r = await post(
      s,
      jobForm({ content: [photo, "tübingen.png"], styles: [painting], options: { size: 48, iterations: 8 } }),
    );
    assert.equal(r.statusCode, 202, r.body);
    const { id } = r.json() as { id: string };
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(r.headers.location, `/api/jobs/${id}`);
    const job = await waitForJob(s, id);
    assert.equal(job.state, "done", JSON.stringify(job));
    assert.equal(job.iteration, 8);
    assert.equal(job.iterations, 8);
    assert.equal(job.position, null);
    assert.equal(job.error, null);
    assert.equal(job.losses.length, 8);
    assert.ok(Number.isFinite(job.loss) && (job.loss as number) < (job.losses[0]?.[1] as number));
    assert.deepEqual([job.result?.width, job.result?.height], [48, 36]);

    const preview = await s.app.inject({ url: job.preview as string });
    assert.equal(preview.headers["content-type"], "image/jpeg");
    assert.equal((await sharp(preview.rawPayload).metadata()).width, 48);

    // A finished job's event stream is its snapshot, then it ends.
    const events = await s.app.inject({ url: `/api/jobs/${id}/events` });
    assert.match(String(events.headers["content-type"]), /^text\/event-stream/);
    const snapshot = JSON.parse(/event: snapshot\ndata: (.*)\n/.exec(events.body)?.[1] ?? "{}") as JobJson;
    assert.equal(snapshot.state, "done");
    assert.equal(snapshot.losses.length, 8);

    for (const [format, type] of [
      ["png", "image/png"],
      ["jpeg", "image/jpeg"],
      ["webp", "image/webp"],
    ] as const) {
      const res = await s.app.inject({ url: `/api/jobs/${id}/result?format=${format}` });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["content-type"], type);
      assert.match(
        String(res.headers["content-disposition"]),
        /^attachment; filename="t_bingen-stylegram\.(png|jpg|webp)"$/,
      );
      const meta = await sharp(res.rawPayload).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], [format, 48, 36]);
    }
    const bad = await s.app.inject({ url: `/api/jobs/${id}/result?format=gif` });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().field, "format");

    // The uploads are gone once the job has ended; the result stays until it expires.
    assert.deepEqual(fs.readdirSync(path.join(s.dir, id)), ["result.png"]);
    assert.equal(fs.statSync(s.dir).mode & 0o777, 0o700);
  });

  test("the equivalent command, run by the CLI, makes the same picture", async () => {
    const s = await serve();
    const options = {
      size: 48,
      iterations: 4,
      styleWeight: 2000,
      originalColors: true,
      styleLayers: ["relu1_1", "relu2_1", "relu3_1"],
      pooling: "avg",
      init: "noise",
      seed: -3,
      device: "cpu",
    };
    const r = await post(
      s,
      jobForm({ content: [photo, "my photo.png"], styles: [[painting, "-starry.jpg"]], options }),
    );
    assert.equal(r.statusCode, 202, r.body);
    const job = await waitForJob(s, (r.json() as { id: string }).id);
    assert.equal(job.state, "done", job.error ?? "");
    assert.equal(
      job.command,
      equivalentCommand({
        content: "my photo.png",
        styles: ["-starry.jpg"],
        output: "my photo-stylegram.png",
        options,
      }),
    );
    // The server's own paths are not the reader's business: their stylegram finds its own weights.
    assert.doesNotMatch(job.command, /--weights/);
    assert.ok(!job.command.includes(WEIGHTS_DIR));

    // The command as a person pastes it into a shell, in a folder holding files of those names.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-command-"));
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    fs.writeFileSync(
      path.join(bin, "stylegram"),
      `#!/bin/sh\nexec "${process.execPath}" --import "${import.meta.resolve("tsx")}" "${path.join(ROOT, "src", "cli", "run.ts")}" "$@"\n`,
      { mode: 0o755 },
    );
    fs.writeFileSync(path.join(dir, "my photo.png"), photo);
    fs.writeFileSync(path.join(dir, "-starry.jpg"), painting);
    try {
      const run = spawnSync("sh", ["-c", job.command], {
        cwd: dir,
        encoding: "utf8",
        env: {
          ...process.env,
          PATH: `${bin}:${process.env.PATH}`,
          NODE_OPTIONS: "",
          STYLEGRAM_WEIGHTS: WEIGHTS_DIR,
        },
        timeout: 120_000,
      });
      assert.equal(run.status, 0, `${job.command}\n${run.stderr}`);
      const cli = await sharp(path.join(dir, "my photo-stylegram.png")).raw().toBuffer();
      const web = await sharp((await s.app.inject({ url: job.result?.png as string })).rawPayload)
        .raw()
        .toBuffer();
      assert.deepEqual(cli, web, "the CLI's picture differs from the server's");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bad input gets a clear 4xx naming the problem, nothing is kept, and the server goes on", async () => {
    const s = await serve();
    const good = { content: photo, styles: [painting], options: { size: 48, iterations: 2 } };
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>',
    );
    const cases: [string, FormData | string, number, string | undefined, RegExp][] = [
      ["no content", jobForm({ ...good, content: undefined }), 400, "content", /content is missing/],
      ["no style", jobForm({ ...good, styles: [] }), 400, "style", /style is missing/],
      ["two photos", jobForm({ ...good, extra: [["content", photo]] }), 400, "content", /one photo/],
      [
        "an unknown file field",
        jobForm({ ...good, extra: [["mask", photo]] }),
        400,
        "mask",
        /unknown file field "mask"/,
      ],
      [
        "an unknown field",
        jobForm({ ...good, extra: [["size", "512"]] }),
        400,
        "size",
        /unknown field "size"/,
      ],
      [
        "text as a photo",
        jobForm({ ...good, content: [Buffer.from("just some words"), "photo.jpg"] }),
        415,
        "content",
        /photo\.jpg is not an image stylegram reads/,
      ],
      [
        "an SVG as a style",
        jobForm({ ...good, styles: [[svg, "art.png"]] }),
        415,
        "style",
        /art\.png is SVG; send JPEG, PNG/,
      ],
      [
        "an empty file",
        jobForm({ ...good, styles: [[Buffer.alloc(0), "empty.jpg"]] }),
        400,
        "style",
        /empty\.jpg is empty/,
      ],
      [
        "options that are not JSON",
        jobForm({ ...good, options: "{size: 48" }),
        400,
        "options",
        /not valid JSON/,
      ],
      [
        "options that are a list",
        jobForm({ ...good, options: "[1]" }),
        400,
        "options",
        /must be a JSON object/,
      ],
      [
        "a misspelt option",
        jobForm({ ...good, options: { sise: 48 } }),
        400,
        "sise",
        /no field "sise" \(did you mean "size"\?\)/,
      ],
      [
        "a path where none is taken",
        jobForm({ ...good, options: { weights: "/etc" } }),
        400,
        "weights",
        /no field "weights"/,
      ],
      [
        "a size of the wrong type",
        jobForm({ ...good, options: { size: "big" } }),
        400,
        "size",
        /options\.size must be a whole number from 1 to 4096, got the string "big"/,
      ],
      [
        "zero iterations",
        jobForm({ ...good, options: { iterations: 0 } }),
        400,
        "iterations",
        /options\.iterations must be a whole number from 1 to 10000/,
      ],
      [
        "an unknown device",
        jobForm({ ...good, options: { device: "tpu" } }),
        400,
        "device",
        /one of "cpu", "webgpu", "auto"/,
      ],
      [
        "a size too small for the network",
        jobForm({ ...good, options: { size: 8 } }),
        400,
        "size",
        /too small for layer relu5_1.*"size": \d+/,
      ],
      [
        "an unknown layer",
        jobForm({ ...good, options: { styleLayers: ["relu9_9"] } }),
        400,
        undefined,
        /unknown layer "relu9_9"/,
      ],
      [
        "nine style images",
        jobForm({ ...good, styles: Array.from({ length: 9 }, () => painting) }),
        413,
        "style",
        /too many files/,
      ],
      [
        "JSON instead of multipart",
        JSON.stringify(good.options),
        415,
        undefined,
        /takes multipart\/form-data/,
      ],
    ];
    for (const [what, body, status, field, message] of cases) {
      const r =
        typeof body === "string"
          ? await s.app.inject({
              method: "POST",
              url: "/api/jobs",
              payload: body,
              headers: { "content-type": "application/json" },
            })
          : await post(s, body);
      assert.equal(r.statusCode, status, `${what}: ${r.body}`);
      const answer = r.json() as { error: string; field?: string };
      assert.equal(answer.field, field, `${what}: ${r.body}`);
      assert.match(answer.error, message, what);
      assert.doesNotMatch(
        answer.error,
        /\n\s+at |stylegram-serve-/,
        `${what}: no stack trace or server path`,
      );
    }
    assert.deepEqual(jobDirs(s), [], "a refused request leaves nothing behind");

    for (const [method, url] of [
      ["GET", "/api/jobs/nope"],
      ["GET", "/api/jobs/nope/events"],
      ["GET", "/api/jobs/nope/result"],
      ["DELETE", "/api/jobs/nope"],
    ] as const) {
      const r = await s.app.inject({ method, url });
      assert.equal(r.statusCode, 404, `${method} ${url}`);
      assert.match(
        (r.json() as { error: string }).error,
        /no job nope: its results expire 60 minutes after it ends/,
      );
    }
    const ok = await post(s, jobForm(good));
    assert.equal(ok.statusCode, 202, ok.body);
    assert.equal((await waitForJob(s, (ok.json() as { id: string }).id)).state, "done");
  });

  test("a file over 25 MB and a 20000x20000 PNG of a few kB are refused without decoding", async () => {
    const s = await serve();
    const big = Buffer.concat([photo, Buffer.alloc(25 * 2 ** 20 + 1 - photo.length)]);
    const r = await post(s, jobForm({ content: [big, "huge.png"], styles: [painting] }));
    assert.equal(r.statusCode, 413, r.body);
    assert.equal(r.json().field, "content");
    assert.match(r.json().error, /huge\.png is over the 25 MB limit of one file/);

    const bomb = bombPng(20_000, 20_000);
    assert.ok(bomb.length < 10_000, `the bomb is ${bomb.length} bytes`);
    const rss = process.memoryUsage.rss();
    const started = performance.now();
    const b = await post(s, jobForm({ content: photo, styles: [[bomb, "bomb.png"]] }));
    assert.equal(b.statusCode, 413, b.body);
    assert.equal(b.json().field, "style");
    assert.match(b.json().error, /bomb\.png is 20000x20000 \(400 megapixels\), over the 60 megapixels/);
    // Decoding it would take 1.2 GB and seconds.
    assert.ok(performance.now() - started < 2000);
    assert.ok(process.memoryUsage.rss() - rss < 200e6, "the bomb was not decoded");
    assert.deepEqual(jobDirs(s), []);
  });

  test("a job that fails says why on its page and in the server's log, and the next job runs", async () => {
    const log: string[] = [];
    const s = await serve({ log: { write: (line: string) => log.push(line) } });
    // The header is fine (so the request is taken), the pixels are not: it fails when decoded.
    const truncated = photo.subarray(0, Math.floor(photo.length / 2));
    const r = await post(
      s,
      jobForm({ content: [truncated, "cut.png"], styles: [painting], options: { size: 48, iterations: 2 } }),
    );
    assert.equal(r.statusCode, 202, r.body);
    const failed = await waitForJob(s, (r.json() as { id: string }).id);
    assert.equal(failed.state, "failed");
    assert.match(failed.error as string, /cannot read image cut\.png: .*truncated or corrupt/);
    assert.doesNotMatch(failed.error as string, /stylegram-serve-/);
    assert.ok(
      log.some((l) => l.includes(`warn: job ${failed.id} failed: cannot read image cut.png`)),
      log.join(""),
    );
    // An unexpected error (what a 500 reports) goes there with its stack, one readable line and the trace.
    s.app.log.error({ err: new Error("boom") }, "GET /x: boom");
    assert.match(
      log.at(-1) as string,
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d error: GET \/x: boom\n {2}Error: boom\n\s+at /,
    );
    const result = await s.app.inject({ url: `/api/jobs/${failed.id}/result` });
    assert.equal(result.statusCode, 409);
    assert.match(result.json().error, /failed: it has no result/);

    const diverging = await post(
      s,
      jobForm({
        content: photo,
        styles: [painting],
        // Unbounded: within 0..255 (the default bounds) the loss cannot run away.
        options: {
          size: 48,
          iterations: 30,
          optimizer: "adam",
          learningRate: 1e6,
          styleWeight: 1e12,
          bounds: "none",
        },
      }),
    );
    assert.equal(diverging.statusCode, 202, diverging.body);
    const diverged = await waitForJob(s, (diverging.json() as { id: string }).id);
    assert.equal(
      diverged.state,
      "failed",
      JSON.stringify({ ...diverged, losses: diverged.losses.slice(-3) }),
    );
    assert.match(diverged.error as string, /diverged/);

    const next = await post(
      s,
      jobForm({ content: photo, styles: [painting], options: { size: 48, iterations: 2 } }),
    );
    assert.equal((await waitForJob(s, (next.json() as { id: string }).id)).state, "done");
  });

  test("two slots: two jobs run at once, the third waits; a cancelled job frees its slot when its run has stopped, and keeps its best picture", async () => {
    const s = await serve({ concurrency: 2 });
    const submit = async () => {
      const r = await post(s, jobForm({ content: photo, styles: [painting], options: LONG }));
      assert.equal(r.statusCode, 202, r.body);
      return (r.json() as { id: string; position: number | null }).id;
    };
    const [a, b, c] = [await submit(), await submit(), await submit()];
    const isRunning = (j: JobJson) => j.state === "running" && j.iteration > 0;
    await waitForJob(s, a, isRunning);
    await waitForJob(s, b, isRunning);
    const third = await waitForJob(s, c as string, () => true);
    assert.deepEqual([third.state, third.position], ["queued", 1]);

    const order: string[] = [];
    for (const id of [a, c] as string[]) s.jobs.get(id)?.subscribe((e) => order.push(`${id}:${e.type}`));
    const cancel = await s.app.inject({ method: "DELETE", url: `/api/jobs/${a}` });
    assert.equal(cancel.statusCode, 202);
    assert.deepEqual(cancel.json(), { id: a, state: "cancelling" });
    const cancelled = await waitForJob(s, a);
    await waitForJob(s, c as string, (j) => j.state === "running");
    // The slot went to the next job only once the cancelled run had stopped.
    assert.ok(
      order.indexOf(`${a}:cancelled`) >= 0 && order.indexOf(`${a}:cancelled`) < order.indexOf(`${c}:running`),
      order.join(" "),
    );
    // As the CLI's Ctrl-C does, the best picture so far is kept and can be downloaded.
    assert.equal(cancelled.state, "cancelled");
    assert.ok(cancelled.iteration > 0);
    assert.deepEqual([cancelled.result?.width, cancelled.result?.height], [48, 36]);
    const png = await s.app.inject({ url: cancelled.result?.png as string });
    assert.equal(png.statusCode, 200);
    assert.deepEqual((await sharp(png.rawPayload).metadata()).width, 48);
    assert.deepEqual(fs.readdirSync(path.join(s.dir, a)), ["result.png"]);

    // A job cancelled while it waits ends at once and leaves no upload behind.
    const d = await submit();
    assert.equal((await waitForJob(s, d, () => true)).position, 1);
    assert.deepEqual(fs.readdirSync(path.join(s.dir, d)).sort(), ["content", "style-1"]);
    const dropped = await s.app.inject({ method: "DELETE", url: `/api/jobs/${d}` });
    assert.equal(dropped.statusCode, 200);
    assert.deepEqual(dropped.json(), { id: d, state: "cancelled" });
    assert.deepEqual(fs.readdirSync(path.join(s.dir, d)), []);
    const nothing = await s.app.inject({ url: `/api/jobs/${d}/result` });
    assert.equal(nothing.statusCode, 409);
    assert.match(nothing.json().error, /cancelled before its first iteration: it has no result/);
    for (const id of [b, c]) await s.app.inject({ method: "DELETE", url: `/api/jobs/${id}` });
    assert.equal((await waitForJob(s, b as string)).state, "cancelled");
    assert.equal((await waitForJob(s, c as string)).state, "cancelled");
    assert.deepEqual(await drained(s), { waiting: 0, running: 0 });
  });

  test("a full line gets 429 with Retry-After; one client cannot fill it: places per client, only jobs taken count against its rate, IPv6 by /64", async () => {
    const s = await serve({ maxWaiting: 16, jobsPerClient: 3, rateLimit: { max: 5, windowMs: 60_000 } });
    const form = () => jobForm({ content: photo, styles: [painting], options: LONG });
    const statuses = async (client: string, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await post(s, form(), {}, client)).statusCode);
      return out;
    };
    // One address holds at most 3 places, running or waiting; then 429 naming the limit.
    assert.deepEqual(await statuses("10.0.0.1", 3), [202, 202, 202]);
    const fourth = await post(s, form(), {}, "10.0.0.1");
    assert.equal(fourth.statusCode, 429, fourth.body);
    assert.match(fourth.json().error, /you have 3 jobs waiting or running, the most one address may have/);
    assert.match(String(fourth.headers["retry-after"]), /^\d+$/);

    // Refused requests do not count against the rate: ten mistakes, then five jobs are still taken.
    for (let i = 0; i < 10; i++) {
      const bad = await post(
        s,
        jobForm({ content: photo, styles: [painting], options: { sise: 1 } }),
        {},
        "10.0.0.2",
      );
      assert.equal(bad.statusCode, 400);
    }
    const taken: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await post(s, form(), {}, "10.0.0.2");
      assert.equal(r.statusCode, 202, `job ${i + 1}: ${r.body}`);
      taken.push((r.json() as { id: string }).id);
      // Cancelled at once, so that the places are free and only the rate can refuse.
      await s.app.inject({ method: "DELETE", url: `/api/jobs/${taken.at(-1)}` });
      await waitForJob(s, taken.at(-1) as string);
    }
    const limited = await post(s, form(), {}, "10.0.0.2");
    assert.equal(limited.statusCode, 429, limited.body);
    assert.match(limited.json().error, /too many jobs from your address: at most 5 in 60 s/);

    // The addresses of one IPv6 /64 are one client; another /64 is another.
    assert.deepEqual(await statuses("2001:db8:1:2::1", 2), [202, 202]);
    assert.deepEqual(await statuses("2001:db8:1:2:ffff:ffff:ffff:9", 2), [202, 429]);
    assert.deepEqual(await statuses("::ffff:10.0.0.1", 1), [429], "an IPv4 address mapped to IPv6 is itself");
    assert.deepEqual(await statuses("2001:db8:1:3::1", 1), [202]);
    // This machine's own programs are held only to the line's limit.
    assert.deepEqual(await statuses("127.0.0.1", 4), [202, 202, 202, 202]);
    for (const j of s.jobs.values()) s.queue.cancel(j);

    const small = await serve({ maxWaiting: 1 });
    const first = await post(small, form(), {}, "10.0.0.1");
    const second = await post(small, form(), {}, "10.0.0.1");
    assert.deepEqual([first.statusCode, second.statusCode], [202, 202]);
    const full = await post(small, form(), {}, "10.0.0.2");
    assert.equal(full.statusCode, 429, full.body);
    assert.match(String(full.headers["retry-after"]), /^\d+$/);
    assert.match(full.json().error, /the server is busy: 1 running and 1 waiting/);
    for (const j of small.jobs.values()) small.queue.cancel(j);
  });

  test("requests from other sites are refused: a Host allow-list in every mode, an Origin with its scheme", async () => {
    const s = await serve({ allowedHosts: ["mybox.local"] });
    const own = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i && !i.internal && i.family === "IPv4")?.address;
    const allowed = [
      "localhost:8080",
      "LOCALHOST",
      "127.0.0.1:80",
      "127.5.6.7",
      "[::1]:8080",
      "[0:0:0:0:0:0:0:1]",
      "mybox.local:8080",
      ...(own ? [`${own}:8080`] : []),
    ];
    for (const host of allowed) {
      const r = await s.app.inject({ url: "/api/options", headers: { host } });
      assert.equal(r.statusCode, 200, `Host: ${host}`);
    }
    const refused = [
      "evil.example:8080",
      "localhost:evil.com",
      "127.999.999.999",
      "127.0.0.1.evil.example",
      "localhost.evil.example",
      "localhost:80:80",
      "[::2]",
      "other.local",
    ];
    for (const host of refused) {
      const r = await s.app.inject({ url: "/api/options", headers: { host } });
      assert.equal(r.statusCode, 403, `Host: ${host}`);
      assert.match(r.json().error, /answers requests for its own names only .*--allowed-host NAME/);
    }
    // What a rebinding page's browser sends: its own name as Host and Origin alike.
    const rebound = await post(s, jobForm({ content: photo, styles: [painting] }), {
      host: "rebind.example:8080",
      origin: "http://rebind.example:8080",
    });
    assert.equal(rebound.statusCode, 403);

    for (const origin of ["https://evil.example", "https://localhost:80", "null", "http://localhost:81"]) {
      const r = await post(s, jobForm({ content: photo, styles: [painting] }), { origin });
      assert.equal(r.statusCode, 403, `Origin: ${origin}`);
      assert.match(r.json().error, /refused a POST from another site/);
    }
    const ownPage = await post(
      s,
      jobForm({ content: photo, styles: [painting], options: { size: 48, iterations: 1 } }),
      { origin: "http://localhost:80" },
    );
    assert.equal(ownPage.statusCode, 202, ownPage.body);
    await waitForJob(s, (ownPage.json() as { id: string }).id);
  });

  test("the page and its schema are served; results expire; closing removes every file", async () => {
    const s = await serve({ expiryMs: 300 });
    const page = await s.app.inject({ url: "/" });
    assert.equal(page.statusCode, 200, "npm run build makes the page");
    assert.match(String(page.headers["content-security-policy"]), /default-src 'self'/);
    assert.match(page.body, /<script type="module" src="app.js">/);
    for (const asset of ["/app.js", "/app.css"])
      assert.equal((await s.app.inject({ url: asset })).statusCode, 200, asset);
    const schema = (await s.app.inject({ url: "/api/options" })).json() as {
      schema: { properties: Record<string, { default?: unknown }> };
    };
    assert.equal(schema.schema.properties.size?.default, 512);
    assert.equal(schema.schema.properties.styleWeight?.default, 500);

    const r = await post(
      s,
      jobForm({ content: photo, styles: [painting], options: { size: 48, iterations: 1 } }),
    );
    const id = (r.json() as { id: string }).id;
    assert.equal((await waitForJob(s, id)).state, "done");
    await new Promise((resolve) => setTimeout(resolve, 900));
    assert.equal((await s.app.inject({ url: `/api/jobs/${id}` })).statusCode, 404, "expired");
    assert.deepEqual(jobDirs(s), []);

    const running = await post(s, jobForm({ content: photo, styles: [painting], options: LONG }));
    await waitForJob(s, (running.json() as { id: string }).id, (j) => j.iteration > 0);
    await s.app.close();
    assert.equal(fs.existsSync(s.dir), false, "the private folder is removed at close");
  });

  test("results and previews: the format is an own key, they are same-origin only, a removed one is a 404", async () => {
    const s = await serve({ frameMs: 0 });
    const r = await post(
      s,
      jobForm({ content: photo, styles: [painting], options: { size: 48, iterations: 2 } }),
    );
    const job = await waitForJob(s, (r.json() as { id: string }).id);
    assert.equal(job.state, "done");
    assert.equal(job.eta, 0, "a finished job has no time left");
    for (const format of ["__proto__", "toString", "constructor", "hasOwnProperty", "valueOf"]) {
      const bad = await s.app.inject({ url: `/api/jobs/${job.id}/result?format=${format}` });
      assert.equal(bad.statusCode, 400, `${format}: ${bad.body}`);
      assert.match(bad.json().error, /format must be png, jpeg or webp/);
    }
    for (const url of [job.preview as string, job.result?.png as string, job.result?.webp as string]) {
      const res = await s.app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.equal(res.headers["cross-origin-resource-policy"], "same-origin", url);
    }
    fs.rmSync(path.join(s.dir, job.id), { recursive: true });
    const gone = await s.app.inject({ url: job.result?.png as string });
    assert.equal(gone.statusCode, 404, gone.body);
  });

  test("file names reach the page and the command without control, format or bidi characters", async () => {
    const s = await serve();
    const names: [string, string][] = [
      ["photo\u202egpj.exe", "photogpj.exe"],
      ["a\u200bb\u2066c\u2069\u200f.png", "abc.png"],
      ["\u0007bell\u2028line\u0085.png", "bellline.png"],
    ];
    for (const [raw, shown] of names) {
      const r = await post(
        s,
        jobForm({ content: [photo, raw], styles: [[painting, raw]], options: { size: 48, iterations: 1 } }),
      );
      assert.equal(r.statusCode, 202, r.body);
      const job = await waitForJob(s, (r.json() as { id: string }).id);
      assert.equal(job.content, shown);
      assert.deepEqual(job.styles, [shown]);
      assert.doesNotMatch(job.command, /[\p{Cc}\p{Cf}\u2028\u2029]/u, job.command);
    }
  });

  test("the advice of a refusal suggests no value the API refuses", async () => {
    const s = await serve();
    const strip = (width: number, height: number) =>
      sharp({ create: { width, height, channels: 3, background: "#357" } })
        .png()
        .toBuffer();
    const cases: [string, FormData, RegExp][] = [
      // 100x10 at 64 px: a style scale of about 2.5 or a size of about 160 would do, both within the API's caps.
      [
        "a style image a little narrow",
        jobForm({ content: photo, styles: [[await strip(100, 10), "strip.png"]], options: { size: 64 } }),
        /"styleScale": 2\.\d+\) or a size of at least \d+ \("size": \d+\)/,
      ],
      // 1000x10: a style scale of about 25 (over the API's 8) or a size of about 1600: only the size is said.
      [
        "a style image too narrow for the style scales the API takes",
        jobForm({ content: photo, styles: [[await strip(1000, 10), "strip.png"]], options: { size: 64 } }),
        /^(?!.*"styleScale").*\("size": 1\d{3}\)/,
      ],
      // 400x1: nothing within the caps would do.
      [
        "a style image too narrow for anything",
        jobForm({ content: photo, styles: [[await strip(400, 1), "strip.png"]], options: { size: 64 } }),
        /\(400x1\) is too narrow for a size that fits: crop it/,
      ],
      [
        "a photo too narrow for anything",
        jobForm({ content: [await strip(400, 1), "strip.png"], styles: [painting], options: { size: 64 } }),
        /\(400x1\) is too narrow for a size that fits: crop it/,
      ],
    ];
    for (const [what, form, advice] of cases) {
      const r = await post(s, form);
      assert.equal(r.statusCode, 400, `${what}: ${r.body}`);
      const { error } = r.json() as { error: string };
      assert.match(error, advice, `${what}: ${error}`);
      // Every value suggested, as a JSON field or a CLI flag, is one the API takes.
      const suggested = [
        ...[...error.matchAll(/"(\w+)": (-?[\d.e+]+)/g)].map(([, key, value]) => [key, value]),
        ...[...error.matchAll(/\((--[a-z-]+) ([^\s),]+)\)/g)].map(([, flag, value]) => [
          Object.keys(JOB_OPTIONS.properties).find((k) => flagFor(k) === flag),
          value,
        ]),
      ];
      for (const [key, value] of suggested) {
        if (key === undefined || !(key in JOB_OPTIONS.properties)) continue;
        assert.ok(
          Value.Check(JOB_OPTIONS, { [key]: Number(value) }),
          `${what}: suggests ${key} ${value}: ${error}`,
        );
      }
    }
  });

  test("a DELETE racing the end of a job: the picture is either returned or removed, never both", async () => {
    const s = await serve();
    const outcomes = new Map<string, number>();
    // DELETE after the last iteration (2 of 2) by 0 to 20 ms: while the picture is encoded and saved,
    // which at 128 px takes about 10 ms; once after the first iteration, once after the end.
    const tries: [number | "done", number][] = [
      [1, 0],
      [2, 0],
      [2, 8],
      [2, 12],
      [2, 20],
      ["done", 5],
    ];
    for (const [at, delay] of tries) {
      const r = await post(
        s,
        jobForm({ content: photo, styles: [painting], options: { size: 128, iterations: 2 } }),
      );
      const id = (r.json() as { id: string }).id;
      await new Promise<void>((resolve) => {
        s.jobs.get(id)?.subscribe((e) => {
          if ((e.type === "progress" && e.iteration === at) || (e.type === "done" && at === "done"))
            resolve();
        });
      });
      await new Promise((resolve) => setTimeout(resolve, delay));
      const del = await s.app.inject({ method: "DELETE", url: `/api/jobs/${id}` });
      assert.ok([200, 202].includes(del.statusCode), del.body);
      const said = del.json() as { state: string; removed?: boolean };
      const file = path.join(s.dir, id, "result.png");
      // Time for a save that comes too late to show.
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (said.removed) {
        // A finished job: its picture is gone, and so is the job.
        assert.equal(fs.existsSync(file), false, `${id}: removed, yet its picture is there`);
        assert.equal((await s.app.inject({ url: `/api/jobs/${id}` })).statusCode, 404);
        outcomes.set("removed", (outcomes.get("removed") ?? 0) + 1);
        continue;
      }
      const job = await waitForJob(s, id);
      const result = await s.app.inject({ url: `/api/jobs/${id}/result` });
      // Whatever the job says it has is what it has.
      assert.equal(
        job.result !== null,
        fs.existsSync(file),
        `${id}: ${job.state}, result ${JSON.stringify(job.result)}`,
      );
      assert.equal(result.statusCode, job.result === null ? 409 : 200);
      const key = `${job.state}${job.result ? " with a picture" : ""}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    console.log("DELETE racing the end:", Object.fromEntries(outcomes));
  });

  test("a private folder left by a killed server is removed at the start; a live or foreign one is not", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-stale-"));
    try {
      const first = await serve({ tmpRoot: root });
      const me = JSON.parse(fs.readFileSync(path.join(first.dir, OWNER_FILE), "utf8")) as Record<
        string,
        unknown
      >;
      await first.app.close();
      const gone = spawnSync(process.execPath, ["-e", "process.exit(0)"]).pid as number;
      const sleeper = spawn("sleep", ["60"]);
      const make = (name: string, owner?: object, ageMs = 0) => {
        const dir = path.join(root, name);
        fs.mkdirSync(path.join(dir, "job"), { recursive: true });
        fs.writeFileSync(path.join(dir, "job", "result.png"), "x");
        if (owner) {
          const file = path.join(dir, OWNER_FILE);
          fs.writeFileSync(file, JSON.stringify(owner));
          const then = new Date(Date.now() - ageMs);
          fs.utimesSync(file, then, then);
        }
        return dir;
      };
      try {
        const killed = make("stylegram-serve-aaaaaa", { ...me, pid: gone });
        const live = make("stylegram-serve-bbbbbb", { ...me, pid: sleeper.pid });
        const unknown = make("stylegram-serve-cccccc");
        const elsewhereFresh = make("stylegram-serve-dddddd", { ...me, pidns: "pid:[1]", pid: gone });
        const elsewhereOld = make(
          "stylegram-serve-eeeeee",
          { ...me, pidns: "pid:[1]", pid: gone },
          20 * 60_000,
        );
        // A link named like a folder of ours, to a folder with a dead owner: neither is touched.
        const target = make("elsewhere", { ...me, pid: gone });
        const link = path.join(root, "stylegram-serve-ffffff");
        fs.symlinkSync(target, link);
        const other = path.join(root, "something-else");
        fs.mkdirSync(other);
        const s = await serve({ tmpRoot: root });
        assert.deepEqual(s.removedStale.sort(), [killed, elsewhereOld].sort());
        for (const kept of [live, unknown, elsewhereFresh, link, target, other, s.dir])
          assert.ok(fs.existsSync(kept), `${kept} was kept`);
        assert.equal(fs.existsSync(killed), false);
      } finally {
        sleeper.kill();
      }
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
