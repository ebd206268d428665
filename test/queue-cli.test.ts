/**
 * The queue's commands and pieces that need no running queue: `stylegram worker`'s and `serve
 * --queue`'s flags and their errors, the queue's address, and where a checkpoint resumes a job.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { parseQueueUrl } from "../src/queue/connection.js";
import { resumePlan } from "../src/queue/resume.js";
import { looksLikeCleanError, runCli, runCliAsync } from "./support/cli.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

describe("the queue's address", () => {
  test("redis:// and rediss:// URLs are read with their port, database and password; anything else is named", () => {
    const a = parseQueueUrl("redis://:s3cret@10.0.0.5:6380/2");
    assert.deepEqual(
      [a.options.host, a.options.port, a.options.db, a.options.password, a.shown],
      ["10.0.0.5", 6380, 2, "s3cret", "redis://***@10.0.0.5:6380/2"],
      "the password is never shown",
    );
    assert.equal(parseQueueUrl("rediss://queue.lan").options.port, 6379);
    assert.ok(parseQueueUrl("rediss://queue.lan").options.tls);
    assert.throws(
      () => parseQueueUrl("127.0.0.1:6379"),
      /--queue expects a Redis URL such as redis:\/\/127\.0\.0\.1:6379/,
    );
    assert.throws(() => parseQueueUrl("http://10.0.0.5:6379"), /scheme http/);
    assert.throws(
      () => parseQueueUrl("redis://10.0.0.5/16"),
      /database after the port must be a number from 0 to 15/,
    );
  });
});

describe("where a checkpoint resumes a job", () => {
  test("one scale: the iterations left, counted on from the checkpoint", () => {
    const { options, offset } = resumePlan({ size: 64, iterations: 150 }, [{ size: 64, iterations: 150 }], {
      iteration: 42,
      scale: 1,
      seconds: 7.5,
    });
    assert.deepEqual(offset, { iteration: 42, seconds: 7.5, scale: 0 });
    assert.deepEqual([options.size, options.scales, options.iterations], [64, [64], [108]]);
  });

  test("coarse to fine: the rest of the scale it was in, then the finer ones; at a scale's very end, its last iteration again", () => {
    const steps = [
      { size: 512, iterations: 100 },
      { size: 1024, iterations: 20 },
      { size: 2048, iterations: 5 },
    ];
    const mid = resumePlan({ size: 2048, iterations: 100 }, steps, { iteration: 110, scale: 2, seconds: 90 });
    assert.deepEqual(mid.offset, { iteration: 110, seconds: 90, scale: 1 });
    assert.deepEqual(
      [mid.options.scales, mid.options.iterations, mid.options.size],
      [[1024, 2048], [10, 5], 2048],
    );
    // Stopped between two scales: the picture is the coarse scale's, which the next one must upsample.
    const edge = resumePlan({ size: 2048 }, steps, { iteration: 100, scale: 1, seconds: 60 });
    assert.deepEqual(edge.offset, { iteration: 99, seconds: 60, scale: 0 });
    assert.deepEqual(
      [edge.options.scales, edge.options.iterations],
      [
        [512, 1024, 2048],
        [1, 20, 5],
      ],
    );
  });
});

describe("stylegram worker and serve --queue on the command line", () => {
  test("worker --help says what it does; without --queue, or with a bad one, a clean error names the form", () => {
    const help = runCli(["worker", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: stylegram worker --queue redis:\/\/HOST:PORT/);
    assert.match(help.stdout, /--takeover-after S/);
    const none = runCli(["worker"]);
    assert.ok(looksLikeCleanError(none), none.stderr);
    assert.match(none.stderr, /worker needs --queue redis:\/\/HOST:PORT/);
    const bad = runCli(["worker", "--queue", "localhost:6379"]);
    assert.ok(looksLikeCleanError(bad), bad.stderr);
    assert.match(bad.stderr, /--queue expects a Redis URL/);
    const typo = runCli(["worker", "--queue", "redis://x", "--concurency", "2"]);
    assert.match(typo.stderr, /unknown option --concurency \(did you mean --concurrency\?\)/);
    assert.match(runCli(["help"]).stdout, /stylegram worker --queue redis:\/\/HOST:PORT/);
  });

  test(
    "serve --queue: --concurrency is the workers'; a Redis that does not answer is named; short tokens are refused",
    needsShared(),
    async () => {
      const both = runCli(["serve", "--queue", "redis://127.0.0.1:1", "--concurrency", "2"]);
      assert.ok(looksLikeCleanError(both), both.stderr);
      assert.match(both.stderr, /--concurrency is the workers' with --queue/);
      const short = runCli(["serve", "--token", "abc", "--weights", WEIGHTS_DIR]);
      assert.ok(looksLikeCleanError(short), short.stderr);
      assert.match(short.stderr, /a token must be at least 16 characters/);
      const empty = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-tokens-")), "tokens");
      fs.writeFileSync(empty, "# nobody yet\n");
      const none = runCli(["serve", "--tokens-file", empty, "--weights", WEIGHTS_DIR]);
      assert.match(none.stderr, /has no token \(one a line, # for comments\)/);
      // A port where nothing listens.
      const closed = net.createServer();
      await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
      const { port } = closed.address() as net.AddressInfo;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const away = await runCliAsync([
        "serve",
        "--port",
        "0",
        "--queue",
        `redis://:pw@127.0.0.1:${port}`,
        "--weights",
        WEIGHTS_DIR,
      ]);
      assert.ok(looksLikeCleanError(away), away.stderr);
      assert.match(
        away.stderr,
        new RegExp(`cannot reach Redis at redis://\\*\\*\\*@127\\.0\\.0\\.1:${port} \\(--queue\\)`),
      );
      assert.doesNotMatch(away.stderr, /pw/);
    },
  );
});
