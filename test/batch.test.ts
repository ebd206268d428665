/**
 * stylegram batch: every photo in every style, the weights loaded once, resumable after a kill,
 * a failed picture reported while the others go on, a manifest of pairs.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { startCli } from "./support/child.js";
import { looksLikeCleanError, runCli, runCliAsync } from "./support/cli.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const photo = (f: string) => path.join(IMAGES_DIR, f);
const env = { STYLEGRAM_WEIGHTS: WEIGHTS_DIR };
const small = ["--size", "64", "--threads", "2"];

describe("stylegram batch", needsShared(), () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-batch-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("two photos in two styles: four pictures; killed while running, the same command finishes without redoing the finished ones", async () => {
    const out = path.join(dir, "out");
    const args = [
      "batch",
      photo("tubingen.jpg"),
      photo("shipwreck.jpg"),
      "--style",
      photo("starry_night.jpg"),
      "--style",
      photo("the_scream.jpg"),
      "-o",
      out,
      ...small,
      "--iterations",
      "40",
    ];
    const first = startCli(args, env);
    // Killed outright once the first picture is written and the second has saved a snapshot.
    await first.waitFor(/wrote .*tubingen_starry_night\.png/);
    await first.waitFor(/iteration 6[0-9]\/160/);
    first.child.kill("SIGKILL");
    await first.done;
    const finished = fs.readdirSync(out).filter((f) => f.endsWith(".png"));
    assert.ok(finished.length >= 1 && finished.length < 4, `${finished.length} finished before the kill`);
    const stamps = new Map(finished.map((f) => [f, fs.statSync(path.join(out, f)).mtimeMs]));
    // Nothing half-written: every picture there is whole (the writes are renames).
    assert.deepEqual(
      fs.readdirSync(out).filter((f) => f.endsWith(".tmp")),
      [],
    );
    const snapshots = fs.readdirSync(path.join(out, ".stylegram"));
    assert.ok(
      snapshots.some((f) => f.endsWith(".snapshot.png")),
      `snapshots: ${snapshots.join(", ")}`,
    );

    const second = await runCliAsync(args, env);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(
      fs
        .readdirSync(out)
        .filter((f) => f.endsWith(".png"))
        .sort(),
      [
        "shipwreck_starry_night.png",
        "shipwreck_the_scream.png",
        "tubingen_starry_night.png",
        "tubingen_the_scream.png",
      ],
    );
    for (const [f, stamp] of stamps)
      assert.equal(fs.statSync(path.join(out, f)).mtimeMs, stamp, `${f} was made again`);
    assert.match(second.stderr, new RegExp(`skipped ${finished.length} finished before`));
    assert.match(second.stderr, /went on from its snapshot at iteration \d+/);
    assert.match(
      second.stderr,
      new RegExp(`${4 - finished.length} made, ${finished.length} finished before, 0 failed`),
    );
    for (const f of finished) assert.doesNotMatch(second.stderr, new RegExp(`wrote .*${f}`));
    assert.ok(!fs.existsSync(path.join(out, ".stylegram")), "the snapshots go once every picture is made");

    // Run again: nothing to do.
    const third = runCli(args, env);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stderr, /0 made, 4 finished before, 0 failed/);
  });

  test("a failed picture is reported, the others go on, and the exit code says so", () => {
    const out = path.join(dir, "failed");
    const broken = path.join(dir, "broken.jpg");
    fs.writeFileSync(broken, "not an image");
    const r = runCli(
      [
        "batch",
        broken,
        photo("tubingen.jpg"),
        "--style",
        photo("the_scream.jpg"),
        "-o",
        out,
        ...small,
        "--iterations",
        "3",
      ],
      env,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /failed: broken_the_scream\.png \(.*broken\.jpg in .*the_scream\.jpg\): /);
    assert.match(r.stderr, /1 made, 0 finished before, 1 failed/);
    assert.ok(fs.existsSync(path.join(out, "tubingen_the_scream.png")));
    assert.ok(!/\n\s+at /.test(r.stderr));
  });

  test("a manifest of pairs with their own options, and --concurrency 2", () => {
    const out = path.join(dir, "manifest");
    const manifest = path.join(dir, "pairs.json");
    fs.writeFileSync(
      manifest,
      JSON.stringify([
        { content: photo("tubingen.jpg"), style: photo("starry_night.jpg"), options: { size: 48 } },
        { content: photo("shipwreck.jpg"), style: [photo("the_scream.jpg")], output: "wreck.jpg" },
      ]),
    );
    const r = runCli(
      ["batch", "--manifest", manifest, "-o", out, ...small, "--iterations", "3", "--concurrency", "2"],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /2 made, 0 finished before, 0 failed/);
    assert.ok(fs.existsSync(path.join(out, "tubingen_starry_night.png")));
    assert.ok(fs.existsSync(path.join(out, "wreck.jpg")));
    // A manifest's bad option is named with its pair, before any work.
    fs.writeFileSync(
      manifest,
      JSON.stringify([{ content: "a.jpg", style: "b.jpg", options: { stylWeight: 3 } }]),
    );
    const bad = runCli(["batch", "--manifest", manifest, "-o", out], env);
    assert.ok(looksLikeCleanError(bad), bad.stderr);
    assert.match(
      bad.stderr,
      /pairs\.json, pair 1: stylize\(\) has no option "stylWeight" \(did you mean "styleWeight"\?\)/,
    );
  });

  test("bad uses are clean errors", () => {
    const cases: [string[], RegExp][] = [
      [["batch", photo("tubingen.jpg"), "-o", dir], /give at least one --style FILE/],
      [
        ["batch", "--style", photo("tubingen.jpg"), "-o", dir],
        /give photos and at least one --style FILE, or a --manifest/,
      ],
      [
        ["batch", photo("tubingen.jpg"), "--style", photo("the_scream.jpg")],
        /give the output folder with -o DIR/,
      ],
      [
        ["batch", photo("tubingen.jpg"), "--style", photo("the_scream.jpg"), "-o", dir, "--concurrency", "0"],
        /--concurrency must be a whole number from 1 to 256, got "0"/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = runCli(args, env);
      assert.ok(looksLikeCleanError(r), `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
  });
});
