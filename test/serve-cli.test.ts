/**
 * `stylegram serve` as a user starts it: the address it prints, the page and
 * the API behind it, a warning for a non-loopback --host, clear errors for bad
 * flags, and a Ctrl-C that stops it cleanly and removes its private folder.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { type RunningCli, startCli } from "./support/child.js";
import { looksLikeCleanError, runCli } from "./support/cli.js";
import { encodeForm, jobForm, rawPost, tinyImages } from "./support/serve.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

describe("stylegram serve", () => {
  test("bad flags get a clear error naming the fix", () => {
    const cases: [string[], RegExp][] = [
      [["--port", "http"], /--port expects a number, got "http"/],
      [["--port", "70000"], /--port expects a port number from 0 to 65535/],
      [["--host", "my laptop"], /--host expects an IP address such as 127.0.0.1 or 0.0.0.0/],
      [["--concurrency", "0"], /--concurrency expects a whole number >= 1/],
      [["photo.jpg"], /serve takes no file arguments/],
      [["--concurency", "2"], /unknown option --concurency \(did you mean --concurrency\?\)/],
      [
        ["--allowed-host", "http://mybox:8080"],
        /--allowed-host expects a host name or address such as mybox\.local/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = runCli(["serve", ...args]);
      assert.ok(looksLikeCleanError(r), `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const help = runCli(["help", "serve"]);
    assert.equal(help.code, 0);
    assert.match(
      help.stdout,
      /Usage: stylegram serve \[--port 8080\] \[--host 127\.0\.0\.1\] \[--concurrency 1\]/,
    );
    assert.match(help.stdout, /--allowed-host NAME {2}a name the page may be opened by/);
  });

  test(
    "serves the page and the API on loopback; Ctrl-C stops it and removes its folder",
    needsShared(),
    async () => {
      const cli = startCli(["serve", "--port", "0", "--weights", WEIGHTS_DIR]);
      try {
        const url = await addressOf(cli);
        const dir = /uploads and results in (\S+)/.exec(cli.printed().stderr)?.[1] as string;
        assert.match(url, /^http:\/\/localhost:\d+\/$/);
        assert.ok(fs.existsSync(dir));
        const page = await fetch(url);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /<title>stylegram<\/title>/);
        const options = (await (await fetch(`${url}api/options`)).json()) as {
          schema: { properties: object };
        };
        assert.ok("styleWeight" in options.schema.properties);
        assert.doesNotMatch(cli.printed().stderr, /warning/);
        cli.child.kill("SIGINT");
        const done = await cli.done;
        assert.equal(done.code, 0, done.stderr);
        assert.match(done.stderr, /stopping \(Ctrl-C\)/);
        assert.equal(fs.existsSync(dir), false, "the private folder is removed");
      } finally {
        cli.child.kill("SIGKILL");
      }
    },
  );

  test(
    "--host 0.0.0.0 warns that the network can use it, and still refuses other names (DNS rebinding); a port in use is named",
    needsShared(),
    async () => {
      const cli = startCli([
        "serve",
        "--port",
        "0",
        "--host",
        "0.0.0.0",
        "--allowed-host",
        "mybox.local",
        "--weights",
        WEIGHTS_DIR,
      ]);
      const blocker = net.createServer();
      try {
        const port = Number(new URL(await addressOf(cli)).port);
        assert.match(
          cli.printed().stderr,
          /warning: listening on 0\.0\.0\.0: anyone who can reach this machine/,
        );
        // What a rebinding page's browser sends: its own name as Host (and Origin), to this machine.
        const rebound = await request(port, { host: `rebind.example:${port}` });
        assert.equal(rebound.status, 403, rebound.body);
        const post = await request(port, {
          method: "POST",
          path: "/api/jobs",
          host: `rebind.example:${port}`,
          headers: {
            origin: `http://rebind.example:${port}`,
            "content-type": "multipart/form-data; boundary=x",
          },
        });
        assert.equal(post.status, 403, post.body);
        const own = Object.values(os.networkInterfaces())
          .flat()
          .find((i) => i && !i.internal && i.family === "IPv4")?.address;
        for (const host of [`localhost:${port}`, `mybox.local:${port}`, ...(own ? [`${own}:${port}`] : [])]) {
          assert.equal((await request(port, { host })).status, 200, host);
        }

        await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
        const taken = (blocker.address() as net.AddressInfo).port;
        const r = runCli(["serve", "--port", String(taken), "--weights", WEIGHTS_DIR]);
        assert.ok(looksLikeCleanError(r), r.stderr);
        assert.match(r.stderr, new RegExp(`port ${taken} is in use: give another with --port N`));
      } finally {
        blocker.close();
        cli.child.kill("SIGTERM");
        assert.equal((await cli.done).code, 0);
      }
    },
  );

  test(
    "--host 0:0:0:0:0:0:0:1 is loopback: no warning, and the address printed is [::1]",
    needsShared(),
    async () => {
      const cli = startCli(["serve", "--port", "0", "--host", "0:0:0:0:0:0:0:1", "--weights", WEIGHTS_DIR]);
      try {
        const url = await addressOf(cli);
        assert.match(url, /^http:\/\/\[::1\]:\d+\/$/);
        assert.doesNotMatch(cli.printed().stderr, /warning/);
        assert.equal((await fetch(`${url}api/options`)).status, 200);
      } finally {
        cli.child.kill("SIGTERM");
        assert.equal((await cli.done).code, 0);
      }
    },
  );

  test(
    "SIGTERM ends serve within seconds while a job runs and an upload is withheld; a failed job is on stderr",
    needsShared(),
    async () => {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-serve-cli-"));
      const cli = startCli(["serve", "--port", "0", "--weights", WEIGHTS_DIR], { TMPDIR: tmp });
      try {
        const url = await addressOf(cli);
        const port = Number(new URL(url).port);
        const { photo, painting } = await tinyImages();
        const submit = async (content: Buffer, options: object) => {
          const r = await fetch(`${url}api/jobs`, {
            method: "POST",
            body: jobForm({ content: [content, "cut.png"], styles: [painting], options }),
          });
          assert.equal(r.status, 202, await r.clone().text());
          return ((await r.json()) as { id: string }).id;
        };
        // A photo whose header reads but whose pixels do not: the job fails when it runs.
        const failing = await submit(photo.subarray(0, photo.length >> 1), { size: 48, iterations: 2 });
        await cli.waitFor(new RegExp(`warn: job ${failing} failed: cannot read image cut\\.png`));
        // The job's command is for whoever reads the page: no path of the server's (its weights) in it.
        const view = (await (await fetch(`${url}api/jobs/${failing}`)).json()) as { command: string };
        assert.match(view.command, /^stylegram cut\.png /);
        assert.ok(!view.command.includes(WEIGHTS_DIR) && !view.command.includes("--weights"), view.command);
        const running = await submit(photo, { size: 48, iterations: 10_000 });
        for (;;) {
          const j = (await (await fetch(`${url}api/jobs/${running}`)).json()) as { iteration: number };
          if (j.iteration > 0) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const { body, contentType } = await encodeForm(jobForm({ content: photo, styles: [painting] }));
        const withheld = rawPost(
          port,
          "/api/jobs",
          { "content-type": contentType, "content-length": String(body.length) },
          body.subarray(0, 300),
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
        const started = performance.now();
        cli.child.kill("SIGTERM");
        const done = await cli.done;
        const seconds = (performance.now() - started) / 1000;
        assert.equal(done.code, 0, done.stderr);
        assert.ok(seconds < 5, `serve took ${seconds.toFixed(1)} s to stop`);
        await withheld.closed;
        console.log(`serve stopped ${seconds.toFixed(2)} s after SIGTERM`);
        assert.doesNotMatch(done.stderr, / error: /, "a stop is no error");
        assert.deepEqual(
          fs.readdirSync(tmp).filter((n) => n.startsWith("stylegram-serve-")),
          [],
          "the private folder is removed",
        );
      } finally {
        cli.child.kill("SIGKILL");
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    },
  );

  test("the private folder of a killed server is removed by the next one", needsShared(), async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-serve-cli-"));
    try {
      const killed = startCli(["serve", "--port", "0", "--weights", WEIGHTS_DIR], { TMPDIR: tmp });
      await addressOf(killed);
      const dir = /uploads and results in (\S+)/.exec(killed.printed().stderr)?.[1] as string;
      killed.child.kill("SIGKILL");
      await killed.done;
      assert.ok(fs.existsSync(dir), "SIGKILL leaves the folder behind");
      const next = startCli(["serve", "--port", "0", "--weights", WEIGHTS_DIR], { TMPDIR: tmp });
      try {
        await addressOf(next);
        assert.match(
          next.printed().stderr,
          new RegExp(`removed ${dir}, left behind by a server that was killed`),
        );
        assert.equal(fs.existsSync(dir), false);
      } finally {
        next.child.kill("SIGTERM");
        await next.done;
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

/** One request over a real socket, with any Host header (fetch would send its own). */
function request(
  port: number,
  o: { method?: string; path?: string; host: string; headers?: Record<string, string> },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: o.method ?? "GET",
        path: o.path ?? "/api/options",
        headers: { ...o.headers, host: o.host },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** The address the server printed on stdout, once it has (stdout and stderr arrive in either order). */
async function addressOf(cli: RunningCli): Promise<string> {
  await cli.waitFor(/uploads and results in/);
  for (let i = 0; i < 100; i++) {
    const m = /open (http:\/\/\S+)/.exec(cli.printed().stdout);
    if (m) return m[1] as string;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no address printed: ${cli.printed().stdout}`);
}
