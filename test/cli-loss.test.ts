import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import { looksLikeCleanError, runCli as run } from "./support/cli.js";
import { compareVectors, relativeError } from "./support/compare.js";
import { GOLDEN_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const shared = needsShared();
const runCli = (args: string[], env: Record<string, string> = {}) => run(["loss", ...args], env);
const golden = (f: string) => path.join(GOLDEN_DIR, f);
/** The golden style and image, with another content image. */
const withContent = (file: string) => [
  "--content",
  file,
  "--style",
  path.join(GOLDEN_DIR, "style.png"),
  "--image",
  path.join(GOLDEN_DIR, "x.png"),
  "--weights",
  WEIGHTS_DIR,
];
const base = ["--content", golden("content.png"), "--style", golden("style.png"), "--image", golden("x.png")];

describe("stylegram loss", shared, () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-loss-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test("prints every term as JSON matching the golden values and writes the gradient", () => {
    const gradFile = path.join(tmp, "grad.f32");
    const r = runCli([...base, "--weights", WEIGHTS_DIR, "--grad-out", gradFile, "--pooling", "avg"]);
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    const expected = JSON.parse(fs.readFileSync(golden("golden.json"), "utf8")).cases.avg;
    assert.deepEqual(Object.keys(got), ["total", "content", "style", "tv"]);
    assert.deepEqual(Object.keys(got.style), Object.keys(expected.style));
    assert.ok(relativeError(got.total, expected.total) < 1e-3);
    assert.ok(relativeError(got.content.relu4_2, expected.content.relu4_2) < 1e-3);
    for (const [l, v] of Object.entries(expected.style))
      assert.ok(relativeError(got.style[l], v as number) < 1e-3, l);
    const read = (f: string) => new Float32Array(new Uint8Array(fs.readFileSync(f)).buffer);
    const { cosine, relL2 } = compareVectors(read(gradFile), read(golden("grad_total_avg.f32")));
    assert.ok(cosine > 0.9999 && relL2 < 1e-3, `cosine ${cosine}, rel L2 ${relL2}`);
  });

  test("takes the weights folder from STYLEGRAM_WEIGHTS and layers by index", () => {
    const r = runCli(
      [...base, "--content-layers", "10", "--style-layers", "1,13", "--style-layer-weights", "1,3"],
      {
        STYLEGRAM_WEIGHTS: WEIGHTS_DIR,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(got.content), ["relu4_2"]);
    assert.deepEqual(Object.keys(got.style), ["relu1_1", "relu5_1"]);
    // total = 5 * content + 500 * (1/4 style1_1 + 3/4 style5_1) + 1e-3 * tv
    const expected =
      5 * got.content.relu4_2 + 500 * (0.25 * got.style.relu1_1 + 0.75 * got.style.relu5_1) + 1e-3 * got.tv;
    assert.ok(relativeError(got.total, expected) < 1e-5, `${got.total} vs ${expected}`);
  });

  test("blends several style images", () => {
    const one = JSON.parse(runCli([...base, "--weights", WEIGHTS_DIR]).stdout);
    const same = runCli([
      ...base,
      "--style",
      golden("style.png"),
      "--style-blend",
      "0.3,0.7",
      "--weights",
      WEIGHTS_DIR,
    ]);
    assert.equal(same.code, 0, same.stderr);
    // Blending an image with itself gives the same target, whatever the blend weights.
    assert.ok(relativeError(JSON.parse(same.stdout).total, one.total) < 1e-4);
    const other = runCli([...base, "--style", golden("content.png"), "--weights", WEIGHTS_DIR]);
    assert.notEqual(JSON.parse(other.stdout).style.relu3_1, one.style.relu3_1);
  });

  describe("bad input gets a clear error, not a stack trace", () => {
    const cases: [string, () => string[], RegExp, number?][] = [
      [
        "missing weights folder",
        () => [...base, "--weights", path.join(tmp, "nope")],
        /weights path .*nope does not exist/,
      ],
      ["no weights at all", () => base, /VGG19 weights are missing[\s\S]*stylegram models fetch/],
      [
        "unknown layer",
        () => [...base, "--weights", WEIGHTS_DIR, "--style-layers", "relu9_9"],
        /unknown layer "relu9_9"/,
        2,
      ],
      [
        "layer index out of range",
        () => [...base, "--weights", WEIGHTS_DIR, "--content-layers", "17"],
        /index 17 is out of range/,
        2,
      ],
      [
        "not a number",
        () => [...base, "--weights", WEIGHTS_DIR, "--style-weight", "lots"],
        /--style-weight must be a finite number >= 0, got "/,
        2,
      ],
      [
        "negative weight",
        () => [...base, "--weights", WEIGHTS_DIR, "--tv-weight=-1"],
        /--tv-weight must be a finite number >= 0, got/,
        2,
      ],
      [
        "bad pooling",
        () => [...base, "--weights", WEIGHTS_DIR, "--pooling", "min"],
        /--pooling must be one of "max", "avg", got/,
        2,
      ],
      [
        "blend count mismatch",
        () => [...base, "--weights", WEIGHTS_DIR, "--style-blend", "1,2"],
        /--style-blend: 2 given, but there is 1 style image\b/,
        2,
      ],
      [
        "unknown flag",
        () => [...base, "--weights", WEIGHTS_DIR, "--colour", "x"],
        /unknown option --colour/,
        2,
      ],
      ["missing image", () => withContent(path.join(tmp, "none.png")), /image .*none.png does not exist/],
      ["corrupt image", () => withContent(path.join(tmp, "corrupt.png")), /cannot read image .*corrupt.png/],
      [
        "image size differs from the content",
        () => [
          "--content",
          golden("content.png"),
          "--style",
          golden("style.png"),
          "--image",
          golden("style.png"),
          "--weights",
          WEIGHTS_DIR,
        ],
        /112x80 but the content image is 128x96/,
      ],
      [
        "image too small for the deepest layer",
        () => [
          "--content",
          path.join(tmp, "tiny.png"),
          "--style",
          golden("style.png"),
          "--image",
          path.join(tmp, "tiny.png"),
          "--weights",
          WEIGHTS_DIR,
        ],
        /content image is 12x20, too small for layer relu5_1: it needs at least 16x16/,
      ],
      [
        "gradient output onto an input",
        () => [...base, "--weights", WEIGHTS_DIR, "--grad-out", golden("x.png")],
        /refusing to write .*x.png/,
        2,
      ],
    ];
    before(async () => {
      fs.writeFileSync(
        path.join(tmp, "corrupt.png"),
        Buffer.from("\x89PNG\r\n\x1a\nthis is not really a png"),
      );
      await sharp({ create: { width: 12, height: 20, channels: 3, background: "#808080" } })
        .png()
        .toFile(path.join(tmp, "tiny.png"));
    });
    for (const [name, args, message, code] of cases) {
      test(name, () => {
        const r = runCli(args(), {
          STYLEGRAM_WEIGHTS: "",
          STYLEGRAM_HOME: path.join(tmp, "empty-home"),
          STYLEGRAM_AUTO_FETCH: "",
        });
        assert.ok(looksLikeCleanError(r), `exit ${r.code}, stderr: ${r.stderr}`);
        assert.match(r.stderr, message);
        if (code !== undefined) assert.equal(r.code, code);
        assert.equal(r.stdout, "");
      });
    }
  });
});
