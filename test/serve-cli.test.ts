/**
 * `stylegram serve` as a user starts it: the address it prints, the page and
 * the API behind it, a warning for a non-loopback --host, clear errors for bad
 * flags, and a Ctrl-C that stops it cleanly and removes its private folder.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { describe, test } from "node:test";
import { type RunningCli, startCli } from "./support/child.js";
import { looksLikeCleanError, runCli } from "./support/cli.js";
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
    "another --host warns that the network can use it; a port in use is named",
    needsShared(),
    async () => {
      const cli = startCli(["serve", "--port", "0", "--host", "0.0.0.0", "--weights", WEIGHTS_DIR]);
      const blocker = net.createServer();
      try {
        await addressOf(cli);
        assert.match(
          cli.printed().stderr,
          /warning: listening on 0\.0\.0\.0: anyone who can reach this machine/,
        );
        await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
        const port = (blocker.address() as net.AddressInfo).port;
        const r = runCli(["serve", "--port", String(port), "--weights", WEIGHTS_DIR]);
        assert.ok(looksLikeCleanError(r), r.stderr);
        assert.match(r.stderr, new RegExp(`port ${port} is in use: give another with --port N`));
      } finally {
        blocker.close();
        cli.child.kill("SIGTERM");
        assert.equal((await cli.done).code, 0);
      }
    },
  );
});

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
