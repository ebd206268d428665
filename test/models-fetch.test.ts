import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { StylegramError } from "../src/errors.js";
import type { ModelSpec } from "../src/models/registry.js";
import { fetchModel } from "../src/models/resolve.js";
import { loadKerasH5 } from "../src/network/formats/keras-h5.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import { startCli } from "./support/child.js";
import { looksLikeCleanError, runCli, runCliAsync } from "./support/cli.js";
import { IMAGES_DIR } from "./support/shared.js";
import { TINY_WIDTHS, writeKerasH5, writeTinyManifest } from "./support/tiny-weights.js";

/** A server on 127.0.0.1 that serves the test's own small file, well and badly. */
function startServer(
  good: Buffer,
): Promise<{ url: string; server: http.Server; sockets: Set<import("node:net").Socket> }> {
  const sockets = new Set<import("node:net").Socket>();
  const server = http.createServer((req, res) => {
    switch (req.url) {
      case "/good.h5":
        res.writeHead(200, { "content-length": good.length });
        res.end(good);
        return;
      case "/truncated.h5":
        res.writeHead(200, { "content-length": good.length });
        res.write(good.subarray(0, Math.floor(good.length / 2)), () => res.destroy());
        return;
      case "/wrong.h5": {
        const other = Buffer.from(good);
        other[other.length - 1] = ((other[other.length - 1] as number) + 1) % 256;
        res.writeHead(200, { "content-length": other.length });
        res.end(other);
        return;
      }
      case "/stall.h5":
        res.writeHead(200, { "content-length": good.length });
        res.write(good.subarray(0, 100)); // then nothing, until the client gives up
        return;
      default:
        res.writeHead(404);
        res.end("not found");
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, sockets });
    }),
  );
}

/** A loopback port nothing listens on: one the system just gave out and took back. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("fetching weights", () => {
  let tmp: string;
  let good: Buffer;
  let srv: Awaited<ReturnType<typeof startServer>>;
  let spec: ModelSpec;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-fetch-"));
    writeTinyManifest(path.join(tmp, "manifest"));
    const file = path.join(tmp, "source.h5");
    await writeKerasH5(file, loadManifestWeights(path.join(tmp, "manifest"), TINY_WIDTHS));
    good = fs.readFileSync(file);
    srv = await startServer(good);
    spec = {
      name: "tiny",
      file: "tiny.h5",
      url: `${srv.url}/good.h5`,
      md5: createHash("md5").update(good).digest("hex"),
      urlEnv: "STYLEGRAM_TINY_URL",
      description: "tiny test weights",
    };
  });
  after(() => {
    for (const s of srv.sockets) s.destroy();
    srv.server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const cacheIsEmpty = (dir: string) => !fs.existsSync(dir) || fs.readdirSync(dir).length === 0;
  const leftIn = (dir: string) => `left behind: ${fs.existsSync(dir) ? fs.readdirSync(dir).join(", ") : ""}`;

  test("a good download lands in the cache, verified, and loads", async () => {
    const dir = path.join(tmp, "cache-good");
    const seen: number[] = [];
    const dest = await fetchModel(spec, { dir, onProgress: (n) => void seen.push(n) });
    assert.equal(dest, path.join(dir, "tiny.h5"));
    assert.deepEqual(fs.readdirSync(dir), ["tiny.h5"]);
    assert.equal(seen.at(-1), good.length);
    const w = await loadKerasH5(dest, TINY_WIDTHS);
    assert.equal(w.size, 16);
  });

  for (const [name, route, message] of [
    ["a truncated download", "/truncated.h5", /cut short|failed|terminated/],
    ["a wrong checksum", "/wrong.h5", /has md5 [0-9a-f]{32}, expected/],
    ["a 404", "/missing.h5", /HTTP 404/],
    ["a server that stalls", "/stall.h5", /stalled: no data for 0.5 s/],
    ["a server that is not there", "", /failed: ECONNREFUSED, nothing is listening at 127\.0\.0\.1:\d+/],
  ] as const) {
    test(`${name} ends in a clear error and an empty cache`, async () => {
      const dir = path.join(tmp, `cache-${route.replace(/\W/g, "") || "refused"}`);
      const url = route === "" ? `http://127.0.0.1:${await closedPort()}/x.h5` : `${srv.url}${route}`;
      await assert.rejects(fetchModel(spec, { dir, url, stallTimeoutMs: 500 }), (e: unknown) => {
        assert.ok(e instanceof StylegramError, String(e));
        assert.match(e.message, message);
        return true;
      });
      assert.ok(cacheIsEmpty(dir), leftIn(dir));
    });
  }

  test("a leftover partial file from an interrupted run is replaced by a clean download", async () => {
    const dir = path.join(tmp, "cache-retry");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "tiny.h5.part"), "half of an old download");
    await fetchModel(spec, { dir });
    assert.deepEqual(fs.readdirSync(dir), ["tiny.h5"]);
    assert.deepEqual(fs.readFileSync(path.join(dir, "tiny.h5")), good);
  });

  test("stylegram models fetch from a mirror checks the pinned checksum and leaves nothing on a mismatch", async () => {
    const home = path.join(tmp, "home-mirror");
    const r = await runCliAsync(["models", "fetch", "--url", `${srv.url}/good.h5`], { STYLEGRAM_HOME: home });
    assert.ok(looksLikeCleanError(r), r.stderr);
    assert.match(r.stderr, /expected 253f8cb515780f3b799900260a226db6/);
    assert.ok(cacheIsEmpty(home));
  });

  test("without weights, stylegram names what is missing and the fetch command, and touches no network", () => {
    const home = path.join(tmp, "home-empty");
    fs.mkdirSync(home);
    const out = path.join(tmp, "out.png");
    const r = runCli(
      [path.join(IMAGES_DIR, "tubingen.jpg"), path.join(IMAGES_DIR, "starry_night.jpg"), "-o", out],
      {
        STYLEGRAM_HOME: home,
        STYLEGRAM_WEIGHTS: "",
        STYLEGRAM_AUTO_FETCH: "",
        // Were a download attempted, it would go here and fail differently.
        STYLEGRAM_VGG19_URL: `${srv.url}/good.h5`,
      },
    );
    assert.ok(looksLikeCleanError(r), r.stderr);
    assert.match(
      r.stderr,
      /VGG19 weights are missing: .*home-empty.*vgg19_weights_tf_dim_ordering_tf_kernels_notop\.h5/,
    );
    assert.match(r.stderr, /stylegram models fetch/);
    assert.ok(!fs.existsSync(out));
    assert.ok(cacheIsEmpty(home));
  });

  test("with --fetch the missing weights are downloaded first (here from a mirror with the wrong file)", async () => {
    const home = path.join(tmp, "home-fetch");
    const out = path.join(tmp, "fetched.png");
    const r = await runCliAsync(
      [
        path.join(IMAGES_DIR, "tubingen.jpg"),
        path.join(IMAGES_DIR, "starry_night.jpg"),
        "-o",
        out,
        "--fetch",
      ],
      { STYLEGRAM_HOME: home, STYLEGRAM_WEIGHTS: "", STYLEGRAM_VGG19_URL: `${srv.url}/good.h5` },
    );
    assert.ok(looksLikeCleanError(r), r.stderr);
    assert.match(r.stderr, /download of .*good\.h5 has md5 .*expected 253f8cb515780f3b799900260a226db6/);
    assert.ok(!fs.existsSync(out));
    assert.ok(cacheIsEmpty(home));
  });

  for (const [url, message] of [
    ["not-a-url", /"not-a-url" is not a URL: give the full address of the file/],
    ["ftp://127.0.0.1/vgg19.h5", /only http:\/\/ and https:\/\/ addresses are supported/],
    [
      "http://127.0.0.1:1/x",
      /cannot download http:\/\/127\.0\.0\.1:1\/x: port 1 is reserved for another protocol/,
    ],
  ] as const) {
    test(`models fetch --url ${url}: a clear error and nothing left behind`, async () => {
      const home = path.join(tmp, `home-bad-url-${url.replace(/\W/g, "")}`);
      const r = await runCliAsync(["models", "fetch", "--url", url], { STYLEGRAM_HOME: home });
      assert.equal(r.code, 2, r.stderr);
      assert.ok(looksLikeCleanError(r), r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /Failed to parse URL|TypeError|fetch failed/);
      assert.ok(cacheIsEmpty(home), leftIn(home));
    });
  }

  for (const [signal, code] of [
    ["SIGTERM", 143],
    ["SIGINT", 130],
    ["SIGHUP", 129],
  ] as const) {
    test(`${signal} during a download removes the partial file and exits ${code}`, async () => {
      const home = path.join(tmp, `home-${signal}`);
      const run = startCli(["models", "fetch", "--url", `${srv.url}/stall.h5`], { STYLEGRAM_HOME: home });
      await run.waitFor(/fetching/);
      const part = path.join(home, "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5.part");
      for (let i = 0; i < 100 && !fs.existsSync(part); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(fs.existsSync(part), "the download had started");
      run.child.kill(signal);
      const r = await run.done;
      assert.equal(r.code, code, r.stderr);
      assert.ok(looksLikeCleanError(r), r.stderr);
      // One line says what happened, and it is the last.
      assert.match(r.stderr, /\nstylegram: download of .*stall\.h5 interrupted; nothing was kept\n$/);
      assert.equal(r.stderr.match(/^stylegram: /gm)?.length, 1, r.stderr);
      assert.ok(cacheIsEmpty(home), leftIn(home));
    });
  }

  test("an abort signal stops a library download and leaves an empty cache", async () => {
    const dir = path.join(tmp, "cache-abort");
    const controller = new AbortController();
    const download = fetchModel(spec, {
      dir,
      url: `${srv.url}/stall.h5`,
      signal: controller.signal,
      onProgress: () => controller.abort(), // once the first bytes are in the partial file's way
    });
    await assert.rejects(download, /download of .*stall\.h5 interrupted; nothing was kept/);
    assert.ok(cacheIsEmpty(dir), leftIn(dir));
    await assert.rejects(
      fetchModel(spec, { dir, signal: AbortSignal.abort() }),
      /interrupted before it started/,
    );
    assert.ok(cacheIsEmpty(dir));
  });

  test("a process that exits in the middle of a download (a second Ctrl-C) leaves no partial file", async () => {
    const dir = path.join(tmp, "cache-exit");
    const dest = path.join(dir, "tiny.h5");
    const fetchTs = fileURLToPath(new URL("../src/models/fetch.ts", import.meta.url));
    // Exits with process.exit, as a second signal does, while fetchFile still holds the partial file open.
    const script = `import(${JSON.stringify(fetchTs)}).then(({ fetchFile }) => {
      const fs = require("node:fs");
      fetchFile({ url: ${JSON.stringify(`${srv.url}/stall.h5`)}, md5: "0".repeat(32), dest: ${JSON.stringify(dest)} });
      setInterval(() => fs.existsSync(${JSON.stringify(`${dest}.part`)}) && process.exit(3), 20);
    });`;
    const child = spawn(process.execPath, ["--import", "tsx", "-e", script], { stdio: "inherit" });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 3, "the child saw the partial file and exited");
    assert.ok(cacheIsEmpty(dir), leftIn(dir));
  });

  test("models list and verify report the cache", () => {
    const home = path.join(tmp, "home-list");
    fs.mkdirSync(home);
    let r = runCli(["models", "list"], { STYLEGRAM_HOME: home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /vgg19 +not fetched/);
    // Nothing fetched: verify fails, so that a script checking the cache sees it.
    r = runCli(["models", "verify"], { STYLEGRAM_HOME: home });
    assert.ok(looksLikeCleanError(r), r.stderr);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nothing to verify: the weights are not in the cache .*stylegram models fetch/);
    fs.writeFileSync(path.join(home, "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"), "garbage");
    r = runCli(["models", "verify"], { STYLEGRAM_HOME: home });
    assert.ok(looksLikeCleanError(r), r.stderr);
    assert.match(r.stdout, /vgg19: CORRUPT/);
  });
});
