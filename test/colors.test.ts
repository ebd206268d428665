import assert from "node:assert/strict";
import path from "node:path";
import { before, describe, test } from "node:test";
import {
  applyColorTransfer,
  colorStats,
  colorTransfer,
  matchColorHistogram,
  symmetricEigen3,
} from "../src/image/colors.js";
import type { RgbImage } from "../src/image/image.js";
import { loadImage } from "../src/image/io.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { VggWeights } from "../src/network/weights.js";
import { stylize } from "../src/stylize/stylize.js";
import { rng } from "./support/random.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

/** n pixels of correlated colours: a random linear map of uniform noise plus an offset. */
function correlatedPixels(n: number, seed: number, mix: number[], offset: number[]): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(3 * n);
  for (let p = 0; p < n; p++) {
    const z = [r() - 0.5, r() - 0.5, r() - 0.5];
    for (let c = 0; c < 3; c++)
      out[3 * p + c] =
        (offset[c] as number) +
        (mix[3 * c] as number) * (z[0] as number) +
        (mix[3 * c + 1] as number) * (z[1] as number) +
        (mix[3 * c + 2] as number) * (z[2] as number);
  }
  return out;
}

const maxAbs = (a: readonly number[], b: readonly number[]) =>
  Math.max(...a.map((v, i) => Math.abs(v - (b[i] as number))));

describe("colour histogram matching (the maths, on synthetic data)", () => {
  test("the 3x3 symmetric eigen-decomposition reconstructs its matrix with orthonormal vectors", () => {
    const m = [4, 1.5, -2, 1.5, 3, 0.25, -2, 0.25, 5];
    const { values, vectors: v } = symmetricEigen3(m);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        let rebuilt = 0;
        let dot = 0;
        for (let k = 0; k < 3; k++) {
          rebuilt += (v[3 * i + k] as number) * (values[k] as number) * (v[3 * j + k] as number);
          dot += (v[3 * k + i] as number) * (v[3 * k + j] as number);
        }
        assert.ok(Math.abs(rebuilt - (m[3 * i + j] as number)) < 1e-12, `entry ${i},${j}`);
        assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12, `orthonormal ${i},${j}`);
      }
  });

  test("the mapped pixels have the target's mean and covariance exactly (to rounding)", () => {
    const style = correlatedPixels(5000, 1, [90, 10, 5, 40, 60, 0, -20, 30, 25], [140, 90, 60]);
    const photo = correlatedPixels(4000, 2, [30, 5, 0, 10, 50, 20, 0, -15, 70], [100, 130, 150]);
    const from = colorStats(style);
    const to = colorStats(photo);
    assert.ok(
      maxAbs(from.mean, to.mean) > 30 && maxAbs(from.cov, to.cov) > 300,
      "the two differ to begin with",
    );
    const mapped = colorStats(applyColorTransfer(style, colorTransfer(from, to)));
    assert.ok(maxAbs(mapped.mean, to.mean) < 1e-3, `mean off by ${maxAbs(mapped.mean, to.mean)}`);
    assert.ok(maxAbs(mapped.cov, to.cov) < 1e-2, `covariance off by ${maxAbs(mapped.cov, to.cov)}`);
  });

  test("the map is the symmetric-square-root one: it commutes with rotations of colour space (Cholesky does not)", () => {
    const style = correlatedPixels(3000, 3, [80, 30, 0, 20, 50, 10, 0, 10, 40], [120, 110, 90]);
    const photo = correlatedPixels(3000, 4, [40, 0, 10, 5, 60, 0, 20, 0, 30], [90, 120, 140]);
    const t = colorTransfer(colorStats(style), colorStats(photo));
    // Swapping R and B in both inputs swaps R and B in the map's output.
    const swap = (a: Float64Array) => {
      const b = Float64Array.from(a);
      for (let p = 0; p < b.length; p += 3) [b[p], b[p + 2]] = [a[p + 2] as number, a[p] as number];
      return b;
    };
    const swapped = colorTransfer(colorStats(swap(style)), colorStats(swap(photo)));
    const direct = swap(Float64Array.from(applyColorTransfer(style, t)));
    const viaSwapped = applyColorTransfer(swap(style), swapped);
    let worst = 0;
    for (let i = 0; i < direct.length; i++)
      worst = Math.max(worst, Math.abs((direct[i] as number) - (viaSwapped[i] as number)));
    assert.ok(worst < 1e-2, `a channel permutation changed the result by ${worst}`);
  });

  test("weights take the statistics of a region only", () => {
    const px = correlatedPixels(2000, 5, [50, 0, 0, 0, 50, 0, 0, 0, 50], [100, 100, 100]);
    const half = Float32Array.from({ length: 2000 }, (_, p) => (p < 1000 ? 1 : 0));
    const region = colorStats(px, half);
    const firstHalf = colorStats(px.subarray(0, 3000));
    assert.ok(maxAbs(region.mean, firstHalf.mean) < 1e-9);
    assert.ok(maxAbs(region.cov, firstHalf.cov) < 1e-9);
  });

  test("an image: the recoloured painting has the photo's mean colour and covariance, within rounding", () => {
    const toImage = (px: Float64Array, w: number, h: number): RgbImage => ({
      width: w,
      height: h,
      data: Uint8Array.from(px, (v) => Math.min(255, Math.max(0, Math.round(v)))),
    });
    // Spreads that stay inside 0..255, so clipping changes nothing.
    const painting = toImage(
      correlatedPixels(64 * 48, 6, [60, 20, 0, 10, 50, 0, 0, 20, 40], [150, 100, 60]),
      64,
      48,
    );
    const photo = toImage(
      correlatedPixels(80 * 60, 7, [30, 0, 10, 10, 40, 10, 0, 0, 60], [90, 120, 140]),
      80,
      60,
    );
    const out = matchColorHistogram(painting, photo);
    assert.deepEqual([out.width, out.height], [64, 48]);
    const got = colorStats(out.data);
    const want = colorStats(photo.data);
    assert.ok(maxAbs(got.mean, want.mean) < 0.5, `mean off by ${maxAbs(got.mean, want.mean)}`);
    assert.ok(maxAbs(got.cov, want.cov) < 2, `covariance off by ${maxAbs(got.cov, want.cov)}`);
  });
});

describe("--colors on real images", needsShared(), () => {
  const content = path.join(IMAGES_DIR, "tubingen.jpg");
  const style = path.join(IMAGES_DIR, "starry_night.jpg");
  let weights: VggWeights;
  before(() => {
    weights = loadManifestWeights(WEIGHTS_DIR);
  });
  const distance = (a: readonly number[], b: readonly number[]) =>
    Math.sqrt(a.reduce((s, v, i) => s + (v - (b[i] as number)) ** 2, 0));

  test("with histogram the picture's mean colour and colour covariance are much closer to the photo's than with style", async () => {
    const size = 96;
    const photo = colorStats((await loadImage(content, { longEdge: size })).data);
    const run = async (colors: "style" | "histogram") => {
      const r = await stylize({
        content,
        styles: [style],
        size,
        iterations: 25,
        weights,
        threads: 2,
        colors,
        // The recolouring is what this measures; the pyramid's large smooth steps move the colours
        // further in a run this short (at 256 px and 200 iterations both end alike: docs/precision.md).
        precondition: "none",
      });
      const s = colorStats(r.image.data);
      return { mean: distance(s.mean, photo.mean), cov: distance(s.cov, photo.cov) };
    };
    const plain = await run("style");
    const matched = await run("histogram");
    // Measured: mean 8.6 -> 2.3 (RGB units), covariance 1770 -> 378 (Frobenius, squared RGB units).
    assert.ok(
      matched.mean < plain.mean / 2.5,
      `mean colour distance: style ${plain.mean}, histogram ${matched.mean}`,
    );
    assert.ok(
      matched.cov < plain.cov / 3,
      `covariance distance: style ${plain.cov}, histogram ${matched.cov}`,
    );
  });

  test("originalColors is colors luminance; the two cannot disagree; a bad value is named", async () => {
    const small = { content, styles: [style], size: 64, iterations: 3, weights, threads: 2 };
    const alias = await stylize({ ...small, originalColors: true });
    const luminance = await stylize({ ...small, colors: "luminance" });
    assert.deepEqual(alias.image.data, luminance.image.data);
    await assert.rejects(
      stylize({ ...small, originalColors: true, colors: "histogram" }),
      /originalColors is the same as colors: "luminance" and cannot go with colors: "histogram": give only one of them/,
    );
    await assert.rejects(
      stylize({ ...small, colors: "sepia" as never }),
      /colors must be one of "style", "luminance", "histogram", got the string "sepia"/,
    );
  });
});
