import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import sharp from "sharp";
import { DivergedError, StoppedBeforeStartError, StoppedError } from "../src/errors.js";
import { chroma } from "../src/image/colors.js";
import type { RgbImage } from "../src/image/image.js";
import { loadImage } from "../src/image/io.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { VggWeights } from "../src/network/weights.js";
import { Objective } from "../src/objective/objective.js";
import { resolveObjective } from "../src/objective/options.js";
import type { Progress } from "../src/stylize/options.js";
import { planEvaluation } from "../src/stylize/plan.js";
import { checkStylize, planScales, stylize } from "../src/stylize/stylize.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const shared = needsShared();
const content = path.join(IMAGES_DIR, "tubingen.jpg");
const style = path.join(IMAGES_DIR, "starry_night.jpg");

function meanAbsDiff(a: Float32Array | Uint8Array, b: Float32Array | Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs((a[i] as number) - (b[i] as number));
  return s / a.length;
}

describe("stylize", shared, () => {
  let weights: VggWeights;
  before(() => {
    weights = loadManifestWeights(WEIGHTS_DIR);
  });
  const small = () => ({ content, styles: [style], size: 64, weights, threads: 2 });

  test("from noise the loss falls by a large factor; the output has the asked size; a seed reproduces it", async () => {
    const seen: Progress[] = [];
    const a = await stylize({
      ...small(),
      init: "noise",
      seed: 7,
      iterations: 40,
      onProgress: (p) => void seen.push(p),
    });
    assert.equal(a.image.width, 64);
    assert.equal(a.image.height, 48);
    assert.equal(a.iterations, 40);
    assert.equal(seen.length, 40);
    const first = seen[0]?.total as number;
    assert.ok(a.loss.total < first / 10, `loss ${first} -> ${a.loss.total}`);
    const again = await stylize({ ...small(), init: "noise", seed: 7, iterations: 40 });
    assert.deepEqual(again.image.data, a.image.data);
    const other = await stylize({ ...small(), init: "noise", seed: 8, iterations: 40 });
    assert.notDeepEqual(other.image.data, a.image.data);
  });

  test("from a picture of flat colours and hard edges, or from noise, the default makes progress", async () => {
    // A red disc and a blue square on white: L-BFGS's classic first step left every later one tiny.
    const svg = `<svg width="200" height="150" xmlns="http://www.w3.org/2000/svg"><rect width="200" height="150" fill="white"/><circle cx="60" cy="70" r="40" fill="red"/><rect x="110" y="40" width="60" height="60" fill="blue"/></svg>`;
    const { data, info } = await sharp(Buffer.from(svg))
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const logo = { width: info.width, height: info.height, data: new Uint8Array(data) };
    for (const init of ["content", "noise"] as const) {
      const seen: number[] = [];
      await stylize({
        ...small(),
        content: logo,
        size: 128,
        iterations: 30,
        init,
        onProgress: (p) => void seen.push(p.loss),
      });
      const first = seen[0] as number;
      const best = Math.min(...seen);
      assert.ok(best < first / 10, `${init}: loss ${first} -> ${best}`);
    }
  });

  test("the stop rule ends a run whose loss no longer falls; 0 runs every iteration", async () => {
    const a = await stylize({ ...small(), iterations: 300, stopBelow: 0.1 });
    assert.equal(a.reason, "converged");
    assert.ok(a.iterations < 300, `${a.iterations} iterations`);
    const b = await stylize({ ...small(), iterations: 30, stopBelow: 0 });
    assert.equal(b.reason, "max-evaluations");
    assert.equal(b.iterations, 30);
  });

  test("original colours keep the content's chroma", async () => {
    const reference = await loadImage(content, { longEdge: 64 });
    const plain = await stylize({ ...small(), iterations: 30 });
    const kept = await stylize({ ...small(), iterations: 30, originalColors: true });
    const keptDiff = meanAbsDiff(chroma(kept.image), chroma(reference));
    const plainDiff = meanAbsDiff(chroma(plain.image), chroma(reference));
    assert.ok(keptDiff < 1.5, `chroma difference with original colours ${keptDiff}`);
    assert.ok(plainDiff > 5 * keptDiff, `chroma difference without: ${plainDiff}`);
  });

  test("style scale changes the style target, and so the result", async () => {
    const terms = async (styleScale: number) => {
      const seen: Progress[] = [];
      await stylize({ ...small(), iterations: 1, styleScale, onProgress: (p) => void seen.push(p) });
      return seen[0] as Progress;
    };
    const [full, half] = await Promise.all([terms(1), terms(0.5)]);
    assert.equal(full.content.relu4_2, half.content.relu4_2);
    assert.notEqual(full.style.relu3_1, half.style.relu3_1);
  });

  test("init from the style image or a file, and the Adam optimiser, reduce the loss", async () => {
    for (const init of ["style", { image: style }] as const) {
      const seen: number[] = [];
      const r = await stylize({
        ...small(),
        init,
        iterations: 15,
        onProgress: (p) => void seen.push(p.total),
      });
      assert.ok(r.loss.total < (seen[0] as number), `init ${JSON.stringify(init)}`);
    }
    const seen: number[] = [];
    const r = await stylize({
      ...small(),
      optimizer: "adam",
      iterations: 30,
      onProgress: (p) => void seen.push(p.total),
    });
    assert.ok(r.loss.total < (seen[0] as number) / 2, `adam: ${seen[0]} -> ${r.loss.total}`);
  });

  test("snapshots and an abort return the best image so far", async () => {
    const controller = new AbortController();
    const snapshots: [number, RgbImage][] = [];
    const r = await stylize({
      ...small(),
      iterations: 100,
      snapshotEvery: 3,
      onSnapshot: (img, i) => void snapshots.push([i, img]),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.iteration === 7) controller.abort();
      },
    });
    assert.equal(r.reason, "aborted");
    assert.equal(r.iterations, 7);
    assert.deepEqual(
      snapshots.map(([i]) => i),
      [3, 6],
    );
    assert.equal(snapshots[0]?.[1].width, 64);
  });

  test("coarse to fine: each scale starts from the previous result and the last is the output", async () => {
    const seen: Progress[] = [];
    const r = await stylize({
      ...small(),
      scales: [32, 64],
      iterations: [10, 5],
      onProgress: (p) => void seen.push(p),
    });
    assert.deepEqual([r.image.width, r.image.height], [64, 48]);
    assert.equal(r.iterations, 15);
    assert.deepEqual(
      seen.map((p) => `${p.scale}/${p.scales}:${p.width}`),
      [...Array(10).fill("1/2:32"), ...Array(5).fill("2/2:64")],
    );
    // The time left counts the fine scale's evaluations at 4x the pixels of the coarse ones: at the end
    // of the coarse scale it is its own time per evaluation times 4 x 5, and nothing at the end.
    const coarse = seen[9] as Progress;
    const perCoarse = coarse.etaSeconds / (4 * 5);
    assert.ok(perCoarse > 0 && Number.isFinite(perCoarse), String(coarse.etaSeconds));
    assert.equal(seen.at(-1)?.etaSeconds, 0);
    // Starting the fine scale from the coarse result beats starting it from the content image.
    const direct: number[] = [];
    await stylize({ ...small(), iterations: 1, onProgress: (p) => void direct.push(p.total) });
    assert.ok((seen[10]?.total as number) < (direct[0] as number), `${seen[10]?.total} vs ${direct[0]}`);
  });

  test("the default L-BFGS history shrinks to what the memory leaves, and a run that cannot fit is refused", async () => {
    const gib = 2 ** 30;
    const image = (w: number, h: number) => ({ width: w, height: h, data: new Uint8Array(w * h * 3) });
    const check = (size: number, maxMemory: number, historySize?: number) =>
      planEvaluation({
        content: image(400, 400),
        styles: [image(300, 300)],
        sizes: [size],
        styleScale: 1,
        objective: resolveObjective({}, 1),
        optimizer: "lbfgs",
        historySize,
        maxMemory,
      });
    assert.equal((await check(512, 24 * gib)).scales[0]?.historySize, 100);
    const big = (await check(2048, 24 * gib)).scales[0];
    // Each pair is two float32 images of 2048 x 2048 x 3 (101 MB): what the graph leaves of 24 GiB.
    assert.ok(big && big.historySize > 5 && big.historySize < 100, String(big?.historySize));
    assert.ok(big && big.peakBytes <= 24 * gib);
    assert.equal((await check(2048, 64 * gib)).scales[0]?.historySize, 100);
    // 6000 px fits in tiles; at 12000 the optimiser's own vectors (1.7 GB each) do not fit.
    assert.ok(((await check(6000, 24 * gib)).scales[0]?.tile ?? 0) >= 512);
    await assert.rejects(
      check(12000, 24 * gib),
      /needs about [\d.]+ GB of memory, even evaluated in tiles of \d+ px, but 25.8 GB is available \(max memory\): the largest size that fits is \d+ \(size: \d+\)/,
    );
    // The largest size it names does fit, and one more pixel does not.
    const refused = await check(12000, 24 * gib).catch((e: Error) => e.message);
    const largest = Number(/size: (\d+)/.exec(String(refused))?.[1]);
    await check(largest, 24 * gib);
    await assert.rejects(check(largest + 1, 24 * gib), /needs about/);
    await assert.rejects(
      check(512, 2 * gib, 1000),
      /with 1000 L-BFGS pairs \(a smaller historySize needs less\)/,
    );
  });

  test("scale plans are checked", () => {
    assert.deepEqual(planScales({ size: 512 }), [{ size: 512, iterations: 300 }]);
    assert.deepEqual(planScales({ scales: [128, 256], iterations: [50, 20] }), [
      { size: 128, iterations: 50 },
      { size: 256, iterations: 20 },
    ]);
    assert.throws(() => planScales({ scales: [256, 128] }), /must grow/);
    assert.throws(() => planScales({ scales: [128, 256], size: 512 }), /must be the output size/);
    assert.throws(
      () => planScales({ scales: [128, 256], iterations: [1, 2, 3] }),
      /3 iteration counts given for 2 scales/,
    );
    // Above 1024 px the default is coarse to fine from 512, each finer scale with 5x fewer evaluations.
    assert.deepEqual(planScales({ size: 1024 }), [{ size: 1024, iterations: 300 }]);
    assert.deepEqual(planScales({ size: 4096 }), [
      { size: 512, iterations: 300 },
      { size: 1024, iterations: 60 },
      { size: 2048, iterations: 12 },
      { size: 4096, iterations: 5 },
    ]);
    assert.deepEqual(
      planScales({ size: 3000, iterations: 100 }).map((p) => [p.size, p.iterations]),
      [
        [750, 100],
        [1500, 20],
        [3000, 5],
      ],
    );
    assert.deepEqual(planScales({ size: 2048, scales: [2048] }), [{ size: 2048, iterations: 300 }]);
    assert.throws(
      () => planScales({ size: 2048, iterations: [100, 10] }),
      /size: 2048 runs coarse to fine at 512,1024,2048 by default: give 3 counts, or choose the scales \(scales; scales: 2048 for one scale\)/,
    );
  });

  test("a loss that overflows is reported, not returned as an image", async () => {
    await assert.rejects(stylize({ ...small(), styleWeight: 1e38, iterations: 5 }), DivergedError);
  });

  test("nonsense options are refused before any work", async () => {
    await assert.rejects(stylize({ ...small(), size: 0 }), /size must be a whole number from 1 to 100000/);
    await assert.rejects(stylize({ ...small(), iterations: 2.5 }), /iterations must be a whole number/);
    await assert.rejects(
      stylize({ ...small(), styleScale: -1 }),
      /styleScale must be a number from 0.01 to 10, got -1/,
    );
    await assert.rejects(stylize({ ...small(), styles: [] }), /at least one style image/);
    await assert.rejects(stylize({ ...small(), size: 8 }), /too small for layer relu5_1/);
  });

  test("a tiny style scale or a needle-thin image is refused at once, with advice that can be followed", async () => {
    const started = performance.now();
    // It searched size by size before: 1e-300 never answered, blocking a server's every request.
    await assert.rejects(
      stylize({ ...small(), styleScale: 1e-300 }),
      /styleScale must be a number from 0.01 to 10, got 1e-300/,
    );
    const needle = { width: 1, height: 4000, data: new Uint8Array(4000 * 3).fill(128) };
    // 4000:1 needs a size of 62000 for 16 pixels across: no memory holds that, and no style scale up to 10 helps.
    await assert.rejects(
      stylize({ ...small(), styles: [needle], maxMemory: 8 * 2 ** 30 }),
      /the style image becomes 1x64, too small for layer relu5_1, which needs at least 16x16 pixels: its shape \(1x4000\) is too narrow for a size that fits: crop it/,
    );
    // As the content, 62000x16 fits in tiles: that is the advice, unless the caller caps the size (a server).
    await assert.rejects(
      stylize({ ...small(), content: needle, maxMemory: 8 * 2 ** 30 }),
      /use a size of at least 62000 \(size: 62000\)/,
    );
    await assert.rejects(
      checkStylize({ ...small(), content: needle }, { size: 4096 }),
      /its shape \(1x4000\) is too narrow for a size that fits: crop it/,
    );
    // 1024x640 at 0.1 x 64 px is 6x4: it takes a style scale of 0.4 or a size of 245 (not within caps of 0.2 and 128).
    await assert.rejects(
      stylize({ ...small(), styleScale: 0.1 }),
      /use a style scale of at least 0.4 \(styleScale: 0.4\) or a size of at least 245 \(size: 245\)/,
    );
    await assert.rejects(
      checkStylize({ ...small(), styleScale: 0.1 }, { size: 128, styleScale: 0.2 }),
      /its shape \(1024x640\) is too narrow for a size that fits: crop it/,
    );
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 5, `took ${seconds} s`);
  });

  test("an input with transparent pixels is said to be painted onto white; an opaque one with alpha is not", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-alpha-"));
    try {
      const png = (name: string, alpha: number) =>
        sharp({ create: { width: 80, height: 60, channels: 4, background: { r: 200, g: 40, b: 40, alpha } } })
          .png()
          .toFile(path.join(dir, name))
          .then(() => path.join(dir, name));
      const clear = await png("clear.png", 0.5);
      const opaque = await png("opaque.png", 1);
      const notices = async (c: string) => {
        const seen: string[] = [];
        await stylize({
          ...small(),
          content: c,
          iterations: 1,
          onStage: (s) => {
            if (s.stage === "notice") seen.push(s.message as string);
          },
        });
        return seen;
      };
      assert.deepEqual(await notices(clear), [
        `the content image (${clear}) has transparent pixels: they are painted onto white before stylizing`,
      ]);
      assert.deepEqual(await notices(opaque), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a signal that aborts during set-up stops the objective's set-up, whole and tiled", async () => {
    const img = await loadImage(content, { longEdge: 96 });
    const stopped = new AbortController();
    stopped.abort();
    for (const tile of [undefined, 32]) {
      await assert.rejects(
        Objective.create({
          weights,
          content: img,
          styles: [img],
          signal: stopped.signal,
          ...(tile === undefined ? {} : { tile }),
        }),
        StoppedError,
      );
    }
    // stylize() turns it into "nothing to save yet" when it comes before the first iteration.
    const controller = new AbortController();
    await assert.rejects(
      stylize({
        ...small(),
        signal: controller.signal,
        onStage: (s) => {
          if (s.stage === "objective") controller.abort();
        },
      }),
      StoppedBeforeStartError,
    );
  });
});
