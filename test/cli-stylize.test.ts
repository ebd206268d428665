import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { snapshotPath } from "../src/cli/commands/stylize.js";
import { looksLikeCleanError, runCli } from "./support/cli.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const shared = needsShared();
const content = path.join(IMAGES_DIR, "tubingen.jpg");
const style = path.join(IMAGES_DIR, "starry_night.jpg");
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

test("snapshot names carry the iteration, zero-padded", () => {
  assert.equal(snapshotPath("out/pic.png", 30, 500), "out/pic_0030.png");
  assert.equal(snapshotPath("pic.jpg", 100, 20000), "pic_00100.jpg");
});

describe("stylegram CONTENT STYLE -o OUT", shared, () => {
  let tmp: string;
  const fast = () => ["--size", "64", "--weights", WEIGHTS_DIR];
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-cli-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test("writes the picture at the asked size, a JSON log line per iteration, and snapshots", async () => {
    const out = path.join(tmp, "out.jpg");
    const log = path.join(tmp, "run.jsonl");
    const r = runCli([
      content,
      style,
      "-o",
      out,
      "--iterations",
      "12",
      "--save-every",
      "5",
      "--log",
      log,
      ...fast(),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const meta = await sharp(out).metadata();
    assert.equal(meta.format, "jpeg");
    assert.deepEqual([meta.width, meta.height], [64, 48]);
    for (const i of [5, 10]) assert.ok(fs.existsSync(snapshotPath(out, i, 12)), `snapshot ${i}`);
    const lines = fs
      .readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 12);
    assert.deepEqual(Object.keys(lines[0]), [
      "iteration",
      "loss",
      "content",
      "style",
      "tv",
      "seconds",
      "timing",
      "device",
      "precision",
    ]);
    assert.equal(lines[0].precision, "fp32");
    // Where each iteration's time went: the three parts add up to the time between two evaluations.
    for (let i = 1; i < lines.length; i++) {
      const t = lines[i].timing as { objective: number; optimizer: number; other: number };
      assert.ok(t.objective > 0 && t.optimizer >= 0 && t.other >= 0, JSON.stringify(t));
      const between = lines[i].seconds - lines[i - 1].seconds;
      const sum = t.objective + t.optimizer + t.other;
      assert.ok(Math.abs(sum - between) < 0.05 + 0.1 * between, `${sum} s split, ${between} s between`);
    }
    assert.ok(lines[11].loss < lines[0].loss);
    assert.ok(lines[11].seconds >= lines[0].seconds);
    assert.match(r.stderr, /iteration 10\/12/);
    assert.match(r.stderr, /wrote .*out.jpg \(64x48, 12 iterations/);
  });

  test("refuses to overwrite an existing file unless --force", () => {
    const out = path.join(tmp, "exists.png");
    fs.writeFileSync(out, "precious");
    const r = runCli([content, style, "-o", out, "--iterations", "2", ...fast()]);
    assert.ok(looksLikeCleanError(r));
    assert.match(r.stderr, /already exists: pass --force/);
    assert.equal(fs.readFileSync(out, "utf8"), "precious");
    const forced = runCli([content, style, "-o", out, "--iterations", "2", "--force", ...fast()]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(fs.readFileSync(out, "utf8"), "precious");
  });

  test("Ctrl-C saves the best image so far and exits 130", async () => {
    const out = path.join(tmp, "interrupted.png");
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/run.ts",
        content,
        style,
        "-o",
        out,
        "--iterations",
        "5000",
        "--print-every",
        "1",
        ...fast(),
      ],
      { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/iteration 3\//.test(stderr) && !child.killed) child.kill("SIGINT");
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /stopping \(Ctrl-C\): saving the best image so far/);
    const meta = await sharp(out).metadata();
    assert.equal(meta.width, 64);
  });

  describe("bad input gets a clear error and nothing is written", () => {
    const cases: [string, () => string[], RegExp][] = [
      ["no output", () => [content, style, ...fast()], /give the output file with -o OUT/],
      [
        "no style",
        () => [content, "-o", path.join(tmp, "x.png"), ...fast()],
        /a content image and at least one style image/,
      ],
      [
        "output is an input",
        () => [content, style, "-o", style, "--force", ...fast()],
        /refusing to write .*starry_night.jpg/,
      ],
      [
        "unknown output format",
        () => [content, style, "-o", path.join(tmp, "x.gifv"), ...fast()],
        /cannot tell the image format/,
      ],
      [
        "output folder missing",
        () => [content, style, "-o", path.join(tmp, "no", "x.png"), ...fast()],
        /folder .* does not exist/,
      ],
      [
        "missing style image",
        () => [content, path.join(tmp, "nope.jpg"), "-o", path.join(tmp, "x.png"), ...fast()],
        /nope.jpg does not exist/,
      ],
      [
        "corrupt content image",
        () => [path.join(tmp, "bad.jpg"), style, "-o", path.join(tmp, "x.png"), ...fast()],
        /cannot read image .*bad.jpg/,
      ],
      [
        "bad iterations",
        () => [content, style, "-o", path.join(tmp, "x.png"), "--iterations", "many", ...fast()],
        /--iterations must be a whole number >= 1, got/,
      ],
      [
        "bad optimizer",
        () => [content, style, "-o", path.join(tmp, "x.png"), "--optimizer", "sgd", ...fast()],
        /--optimizer must be one of "lbfgs", "adam", got/,
      ],
      [
        "zero size",
        () => [content, style, "-o", path.join(tmp, "x.png"), "--size", "0", "--weights", WEIGHTS_DIR],
        /--size must be a whole number from 1 to 100000, got/,
      ],
      [
        "diverging weights",
        () => [
          content,
          style,
          "-o",
          path.join(tmp, "x.png"),
          "--style-weight",
          "1e38",
          "--iterations",
          "3",
          ...fast(),
        ],
        /diverged.*nothing was saved/,
      ],
    ];
    before(() => fs.writeFileSync(path.join(tmp, "bad.jpg"), "\xff\xd8\xff not a jpeg"));
    for (const [name, args, message] of cases) {
      test(name, () => {
        const r = runCli(args());
        assert.ok(looksLikeCleanError(r), `exit ${r.code}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.ok(!fs.existsSync(path.join(tmp, "x.png")));
      });
    }
  });

  test("--help lists the options with examples", () => {
    const r = runCli(["--help"]);
    assert.equal(r.code, 0);
    for (const flag of [
      "--output",
      "--size",
      "--iterations",
      "--init",
      "--seed",
      "--optimizer",
      "--style-scale",
      "--original-colors",
      "--pooling",
      "--save-every",
      "--log",
      "--tile",
      "Examples:",
    ]) {
      assert.ok(r.stdout.includes(flag), flag);
    }
  });
});
