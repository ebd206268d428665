/**
 * The CLI as a careless or hostile user drives it: sizes that cannot fit,
 * outputs that cannot be written, signals, races between runs, inputs that are
 * not images. Each case asserts the exit code, that the message names the
 * cause (and the fix), and that nothing the user had or made is lost.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { startCli } from "./support/child.js";
import { looksLikeCleanError, runCli } from "./support/cli.js";
import { bombPng } from "./support/png.js";
import { IMAGES_DIR, needsShared, skipUnlessCi, WEIGHTS_DIR } from "./support/shared.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const shared = needsShared();
const content = path.join(IMAGES_DIR, "tubingen.jpg");
const style = path.join(IMAGES_DIR, "starry_night.jpg");
const fast = ["--size", "64", "--weights", WEIGHTS_DIR];
const isRoot = process.getuid?.() === 0;

/** A stylization that runs until it is stopped, printing every iteration. */
const longRun = (out: string) =>
  startCli([content, style, "-o", out, "--iterations", "5000", "--print-every", "1", ...fast]);

describe("hardening: the CLI under bad input", shared, () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-hard-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const file = (name: string) => path.join(tmp, name);

  describe("sizes are checked against memory before any work", () => {
    // Up to a few thousand pixels a picture is evaluated in tiles; these do not fit even so.
    for (const size of ["30000", "100000"]) {
      test(`--size ${size} stops within seconds with the estimate, the memory available and the largest size that fits`, () => {
        const started = performance.now();
        const r = runCli([
          content,
          style,
          "-o",
          file(`big${size}.png`),
          "--size",
          size,
          "--weights",
          WEIGHTS_DIR,
        ]);
        const seconds = (performance.now() - started) / 1000;
        if (size === "30000" && os.totalmem() > 200 * 2 ** 30) return; // a machine this large fits it
        assert.equal(r.code, 2, r.stderr);
        assert.ok(looksLikeCleanError(r), r.stderr);
        assert.match(
          r.stderr,
          /a \d+x\d+ picture needs about [\d.]+ GB of memory, even evaluated in tiles of \d+ px, but [\d.]+ GB is available: the largest size that fits is \d+ \(--size \d+\)/,
        );
        assert.ok(seconds < 20, `took ${seconds} s`);
        assert.ok(!fs.existsSync(file(`big${size}.png`)));
        assert.doesNotMatch(r.stderr, /iteration 1/);
      });
    }

    test("the largest size it names runs; --max-memory lowers the limit", () => {
      const r = runCli([
        content,
        style,
        "-o",
        file("m.png"),
        "--max-memory",
        "600M",
        ...fast,
        "--size",
        "512",
      ]);
      assert.equal(r.code, 2, r.stderr);
      const largest = Number(/--size (\d+)/.exec(r.stderr)?.[1]);
      assert.ok(largest >= 64 && largest < 512, r.stderr);
      const ok = runCli([
        content,
        style,
        "-o",
        file("m.png"),
        "--max-memory",
        "600M",
        "--weights",
        WEIGHTS_DIR,
        "--size",
        String(Math.min(largest, 96)),
        "--iterations",
        "1",
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      const bad = runCli([content, style, "-o", file("m2.png"), "--max-memory", "lots", ...fast]);
      assert.match(bad.stderr, /--max-memory must be a size such as 8G or 500M, got "lots"/);
    });

    test("--threads beyond the cores is capped with a note; set-up phases print progress", () => {
      const r = runCli([
        content,
        style,
        "-o",
        file("threads.png"),
        "--threads",
        "1000",
        "--iterations",
        "2",
        ...fast,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`--threads 1000 is more than the ${os.availableParallelism()} cores here`),
      );
      assert.match(r.stderr, /loading the VGG19 weights\n/);
      assert.match(
        r.stderr,
        /preparing 64x48: style targets and the objective graph, about \d+ MB of memory/,
      );
    });
  });

  describe("finished work survives", () => {
    test("a full disk at the final save keeps the picture in a recovery file; failed snapshots only warn", async (t) => {
      if (!isRoot) return skipUnlessCi(t, "it needs root to mount a small tmpfs");
      const disk = file("full");
      fs.mkdirSync(disk);
      const mount = spawnSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", disk], {
        encoding: "utf8",
      });
      if (mount.status !== 0) return skipUnlessCi(t, `cannot mount a tmpfs here: ${mount.stderr.trim()}`);
      try {
        // Two pages left: enough for the lock file, not for the picture.
        fs.writeFileSync(path.join(disk, "filler"), Buffer.alloc(248 * 1024));
        const out = path.join(disk, "result.png");
        const r = runCli([content, style, "-o", out, "--iterations", "4", "--save-every", "2", ...fast]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          /warning: cannot write .*result_0002.png: no space left on the device; snapshots fail, the run goes on/,
        );
        assert.equal(
          (r.stderr.match(/snapshots fail/g) ?? []).length,
          1,
          "one warning, not one per snapshot",
        );
        assert.match(r.stderr, /cannot write .*result.png: no space left on the device/);
        const kept = /is kept in (\S+): move it where you want it/.exec(r.stderr)?.[1];
        assert.ok(kept, r.stderr);
        assert.ok(
          kept.startsWith(os.tmpdir()),
          "the full disk could not take it, so the temporary folder did",
        );
        const meta = await sharp(kept).metadata();
        assert.deepEqual([meta.format, meta.width, meta.height], ["png", 64, 48]);
        fs.rmSync(kept);
        assert.ok(!fs.existsSync(out));
        assert.deepEqual(fs.readdirSync(disk), ["filler"], "no lock or temporary file is left behind");
      } finally {
        spawnSync("umount", [disk]);
      }
    });

    test("a failing --log write is a warning and the run finishes", () => {
      const out = file("logged.png");
      const r = runCli([
        content,
        style,
        "-o",
        out,
        "--iterations",
        "3",
        "--log",
        "/dev/full",
        "--force",
        ...fast,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /warning: cannot write the log \/dev\/full \(no space left on the device\): logging stops, the run goes on/,
      );
      assert.ok(fs.existsSync(out));
    });

    test("-o naming a folder is refused at the start, even with --force", () => {
      fs.mkdirSync(file("folder.png"));
      const r = runCli([content, style, "-o", file("folder.png"), "--force", ...fast]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /folder.png is a folder: give a file name, such as .*folder.png\/result.png/);
      assert.ok(fs.statSync(file("folder.png")).isDirectory());
    });

    test("-o at a link to a missing file counts as an existing file; -o under a file names it", () => {
      const link = file("dangling.png");
      fs.symlinkSync(file("nowhere.png"), link);
      const r = runCli([content, style, "-o", link, ...fast]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /dangling.png already exists \(a link to a missing file\): pass --force/);
      fs.writeFileSync(file("plain"), "");
      const under = runCli([content, style, "-o", path.join(file("plain"), "x.png"), ...fast]);
      assert.match(under.stderr, /plain is a file, not a folder/);
    });

    test("--log and -o naming the same file are refused", () => {
      const r = runCli([content, style, "-o", file("same.png"), "--log", file("same.png"), ...fast]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /-o and --log name the same file/);
    });

    // 5000 snapshots to check before the start: once an all-pairs comparison that took minutes.
    test("after a run quit without its result, running it again says how to go on", {
      timeout: 120_000,
    }, async () => {
      const out = file("twice.png");
      const args = [content, style, "-o", out, "--log", file("twice.jsonl"), "--save-every", "1"];
      // Killed outright (as a second Ctrl-C, a crash or the OOM killer would end it): a Ctrl-C
      // racing the step in progress could let the run save its picture first.
      const first = startCli([...args, ...fast, "--iterations", "5000", "--print-every", "1"]);
      await first.waitFor(/iteration 2\//);
      first.child.kill("SIGKILL");
      await first.done;
      assert.ok(!fs.existsSync(out), "quit without saving");
      assert.ok(fs.existsSync(file("twice.jsonl")), "the log stays");
      const again = runCli([...args, ...fast, "--iterations", "3"]);
      assert.equal(again.code, 2, again.stderr);
      assert.match(
        again.stderr,
        /twice.jsonl already exists, but .*twice.png does not: an earlier run that did not finish left it. Pass --force to replace that run's log and snapshots, or give --log another name/,
      );
      const forced = runCli([...args, ...fast, "--iterations", "3", "--force"]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(fs.readFileSync(file("twice.jsonl"), "utf8").trim().split("\n").length, 3);
    });

    test("a second run with the same -o stops at once; the first keeps its result", async () => {
      const out = file("raced.png");
      const first = longRun(out);
      await first.waitFor(/iteration 2\//);
      const second = runCli([content, style, "-o", out, "--iterations", "2", ...fast]);
      assert.equal(second.code, 2, second.stderr);
      assert.match(
        second.stderr,
        new RegExp(`another stylegram run \\(process ${first.child.pid}\\) is writing .*raced.png`),
      );
      first.child.kill("SIGINT");
      const r = await first.done;
      assert.equal(r.code, 130, r.stderr);
      assert.equal((await sharp(out).metadata()).width, 64);
    });

    test("a file that appears at -o during the run is not replaced: the result goes to a recovery file", async () => {
      const out = file("appeared.png");
      const run = longRun(out);
      await run.waitFor(/iteration 2\//);
      fs.writeFileSync(out, "precious");
      run.child.kill("SIGTERM");
      const r = await run.done;
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /appeared.png appeared while this run worked \(another run\?\), and it was not overwritten/,
      );
      assert.equal(fs.readFileSync(out, "utf8"), "precious");
      const kept = /is kept in (\S+):/.exec(r.stderr)?.[1] as string;
      assert.equal(path.dirname(kept), tmp, "beside the target");
      assert.equal((await sharp(kept).metadata()).width, 64);
    });

    for (const [signal, code] of [
      ["SIGTERM", 143],
      ["SIGHUP", 129],
    ] as const) {
      test(`${signal} saves the best image so far and exits ${code}`, async () => {
        const out = file(`${signal}.png`);
        const run = longRun(out);
        await run.waitFor(/iteration 3\//);
        run.child.kill(signal);
        const r = await run.done;
        assert.equal(r.code, code, r.stderr);
        assert.match(r.stderr, new RegExp(`stopping \\(${signal}\\): saving the best image so far`));
        assert.equal((await sharp(out).metadata()).width, 64);
        assert.ok(!fs.existsSync(path.join(tmp, `.${signal}.png.stylegram-lock`)));
      });
    }

    test("stylegram loss --grad-out never overwrites without --force", () => {
      const photo = path.join(tmp, "small.png");
      spawnSync(
        process.execPath,
        [
          "-e",
          `require("sharp")({create:{width:32,height:32,channels:3,background:"#884422"}}).png().toFile(${JSON.stringify(photo)})`,
        ],
        { cwd: ROOT },
      );
      const grad = file("grad.f32");
      fs.writeFileSync(grad, "earlier result");
      const args = [
        "loss",
        "--content",
        photo,
        "--style",
        photo,
        "--image",
        photo,
        "--grad-out",
        grad,
        "--weights",
        WEIGHTS_DIR,
      ];
      const r = runCli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /grad.f32 already exists: pass --force to overwrite it/);
      assert.equal(fs.readFileSync(grad, "utf8"), "earlier result");
      const forced = runCli([...args, "--force"]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(fs.statSync(grad).size, 3 * 32 * 32 * 4);
    });
  });

  describe("errors name the real cause", () => {
    const stylizeFrom = (input: string) => runCli([input, style, "-o", file("never.png"), ...fast]);

    test("an unreadable file is 'permission denied', not an unsupported format", () => {
      const locked = file("locked.jpg");
      fs.copyFileSync(content, locked);
      fs.chmodSync(locked, 0o000);
      const args = [
        "--import",
        "tsx",
        "src/cli/run.ts",
        locked,
        style,
        "-o",
        path.join(os.tmpdir(), "never.png"),
        ...fast,
      ];
      // Root reads anything: there the CLI runs without the capabilities that override file permissions
      // (still root, so it reads the clone wherever it lies; a switch to nobody failed in a private folder).
      const r = isRoot
        ? spawnSync(
            "setpriv",
            ["--bounding-set=-dac_override,-dac_read_search", "--", process.execPath, ...args],
            {
              cwd: ROOT,
              encoding: "utf8",
            },
          )
        : spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8" });
      assert.equal(r.error, undefined, "setpriv (util-linux) runs the CLI without root's file capabilities");
      assert.equal(r.status, 1, r.stderr);
      assert.match(
        r.stderr,
        /cannot read image .*locked.jpg: permission denied \(check the file's permissions/,
      );
    });

    test("a corrupt .h5 weights file gets one clear message, without HDF5's own diagnostics", () => {
      const h5 = file("corrupt.h5");
      fs.writeFileSync(
        h5,
        Buffer.concat([Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(4096, 7)]),
      );
      const r = runCli([
        content,
        style,
        "-o",
        file("never.png"),
        "--size",
        "64",
        "--weights",
        h5,
        "--device",
        "cpu",
      ]);
      assert.ok(looksLikeCleanError(r), r.stderr);
      assert.match(r.stderr, /weights file .*corrupt.h5: cannot be opened as HDF5 .*truncated or corrupt/);
      assert.doesNotMatch(r.stderr, /HDF5-DIAG/);
      assert.ok(r.stderr.trim().split("\n").length <= 4, r.stderr);
    });

    test("a misspelt flag is named with what it likely meant; a file name starting with '-' gets its fix", () => {
      const r = runCli([content, style, "-o", file("n.png"), "--stlye-weight", "3"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unknown option --stlye-weight \(did you mean --style-weight\?\)/);
      const dash = runCli(["-dash.jpg", style, "-o", file("n.png")]);
      assert.match(dash.stderr, /a file whose name starts with '-' can be given as \.\/-dash.jpg/i);
      const typo = runCli(["los", "--content", content]);
      assert.match(typo.stderr, /Did you mean 'stylegram loss'\?/);
      const help = runCli(["help", "los"]);
      assert.equal(help.code, 2);
      assert.match(help.stderr, /no command "los" \(did you mean 'stylegram help loss'\?\)/);
    });

    test("a picture too narrow for any size that fits says to crop it; a huge --style-scale is named", async () => {
      const tall = file("tall.png");
      await sharp({ create: { width: 1, height: 1000, channels: 3, background: "#888888" } })
        .png()
        .toFile(tall);
      // Tiled, 16x15500 fits in about 560 MB: within 400 MB it does not.
      const r = runCli([tall, style, "-o", file("n.png"), ...fast, "--max-memory", "400M"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /shape \(1x1000\) is too narrow for a size that fits in memory: crop it/);
      // The largest style scale, 10: a 64 px picture fits in 700 MB, the painting's 640 px pass does not.
      const big = runCli([
        content,
        style,
        "-o",
        file("n.png"),
        "--style-scale",
        "10",
        ...fast,
        "--max-memory",
        "700M",
      ]);
      assert.equal(big.code, 2);
      assert.match(
        big.stderr,
        /most of it is for the style images at 10 x the size \(a smaller --style-scale needs less\)/,
      );
      // Beyond the range, at once: a tiny scale searched sizes one by one for ever.
      const started = performance.now();
      const tiny = runCli([content, style, "-o", file("n.png"), "--style-scale", "1e-300", ...fast]);
      assert.equal(tiny.code, 2);
      assert.match(tiny.stderr, /--style-scale must be a number from 0.01 to 10, got "1e-300"/);
      assert.ok(performance.now() - started < 10_000, "refused within seconds (the CLI's start included)");
    });

    test("an empty file says it is empty", () => {
      fs.writeFileSync(file("empty.jpg"), "");
      const r = stylizeFrom(file("empty.jpg"));
      assert.ok(looksLikeCleanError(r));
      assert.match(r.stderr, /image .*empty.jpg is empty \(0 bytes\)/);
    });

    test("a FIFO is refused at once instead of hanging", () => {
      const fifo = file("pipe.jpg");
      spawnSync("mkfifo", [fifo]);
      const started = performance.now();
      const r = stylizeFrom(fifo);
      assert.ok((performance.now() - started) / 1000 < 30);
      assert.ok(looksLikeCleanError(r));
      assert.match(r.stderr, /pipe.jpg is not a regular file \(a pipe, socket or device\)/);
    });

    test("a decompression bomb is refused from its header, with its numbers", () => {
      fs.writeFileSync(file("bomb.png"), bombPng(20000, 20000, 0));
      const r = stylizeFrom(file("bomb.png"));
      assert.ok(looksLikeCleanError(r), r.stderr);
      assert.match(
        r.stderr,
        /bomb.png is 20000x20000 \(400 megapixels\), over the 268 megapixels stylegram decodes/,
      );
    });

    test("an image too small for the network names the size that works", () => {
      const r = runCli([content, style, "-o", file("tiny.png"), "--size", "8", "--weights", WEIGHTS_DIR]);
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /the content image becomes 8x6, too small for layer relu5_1, which needs at least 16x16 pixels: use a size of at least (\d+) \(--size \1\)/,
      );
      const size = /--size (\d+)/.exec(r.stderr)?.[1] as string;
      const ok = runCli([
        content,
        style,
        "-o",
        file("tiny.png"),
        "--size",
        size,
        "--iterations",
        "1",
        "--weights",
        WEIGHTS_DIR,
      ]);
      assert.equal(ok.code, 0, ok.stderr);
    });

    for (const [flags, message] of [
      [["--size", "-5"], /--size must be a whole number from 1 to 100000, got "-5"/],
      [["--size", "0x60"], /--size must be a whole number from 1 to 100000, got "0x60"/],
      [["--learning-rate", "-1"], /--learning-rate must be a finite number > 0, got "-1"/],
      [["--style-weight", "-3"], /--style-weight must be a finite number >= 0, got "-3"/],
    ] as const) {
      test(`${flags.join(" ")} is refused with the flag's own rule`, () => {
        const r = runCli([content, style, "-o", file("never.png"), "--weights", WEIGHTS_DIR, ...flags]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.doesNotMatch(r.stderr, /ambiguous/);
      });
    }
  });
});
