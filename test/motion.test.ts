/**
 * Optical flow (OpenCV's Farneback), warping, and the paper's consistency checks (Ruder et al.,
 * section 3.2), on synthetic frames whose motion is known.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { RgbImage } from "../src/image/image.js";
import { flowCertainty } from "../src/motion/consistency.js";
import { meanWarpingError, warpingError } from "../src/motion/flicker.js";
import { type Flow, opticalFlow } from "../src/motion/flow.js";
import { warpImage } from "../src/motion/warp.js";

/** A smooth texture with detail at several scales, so that a flow can be found everywhere. */
function texture(x: number, y: number, k: number): number {
  return (
    128 +
    50 * Math.sin(0.31 * x + 0.7 * k) * Math.cos(0.23 * y) +
    30 * Math.sin(0.11 * x * (1 + 0.1 * k) + 0.17 * y) +
    20 * Math.cos(0.53 * y - 0.2 * x)
  );
}

function image(width: number, height: number, f: (x: number, y: number, k: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let k = 0; k < 3; k++)
        data[3 * (y * width + x) + k] = Math.max(0, Math.min(255, Math.round(f(x, y, k))));
  return { width, height, data };
}

const constantFlow = (width: number, height: number, f: (x: number, y: number) => [number, number]): Flow => {
  const data = new Float32Array(2 * width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [u, v] = f(x, y);
      data[2 * (y * width + x)] = u;
      data[2 * (y * width + x) + 1] = v;
    }
  return { width, height, data };
};

describe("optical flow and warping", () => {
  test("Farneback finds a pan of 3 px right and 1 px down within a fifth of a pixel", async () => {
    const [w, h] = [96, 64];
    const a = image(w, h, texture);
    const b = image(w, h, (x, y, k) => texture(x - 3, y - 1, k));
    const flow = await opticalFlow(a, b);
    let du = 0;
    let dv = 0;
    let n = 0;
    for (let y = 12; y < h - 12; y++)
      for (let x = 12; x < w - 12; x++) {
        du += Math.abs((flow.data[2 * (y * w + x)] as number) - 3);
        dv += Math.abs((flow.data[2 * (y * w + x) + 1] as number) - 1);
        n++;
      }
    assert.ok(du / n < 0.2 && dv / n < 0.2, `mean error ${du / n}, ${dv / n} px`);
  });

  test("warping by a whole-pixel flow moves the picture exactly, and marks what comes from outside", async () => {
    const [w, h] = [40, 30];
    const img = image(w, h, texture);
    // out(p) = img(p + (4, -2)): the picture moves 4 px left and 2 px down.
    const { image: out, outside } = await warpImage(
      img,
      constantFlow(w, h, () => [4, -2]),
    );
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const inside = x + 4 < w && y - 2 >= 0;
        assert.equal(outside[y * w + x], inside ? 0 : 1, `outside at ${x},${y}`);
        if (inside)
          for (let k = 0; k < 3; k++)
            assert.equal(out.data[3 * (y * w + x) + k], img.data[3 * ((y - 2) * w + x + 4) + k]);
      }
  });

  test("a half-pixel flow interpolates between neighbours", async () => {
    const img = image(8, 1, (x) => 10 * x);
    const { image: out } = await warpImage(
      img,
      constantFlow(8, 1, () => [0.5, 0]),
    );
    assert.equal(out.data[3 * 2], 25);
  });
});

describe("the consistency check", () => {
  // A square moves 6 px right over a still background: in the later frame, the strip it uncovered
  // was hidden before (disoccluded); the square and the background far from it were visible in both.
  const [w, h] = [64, 48];
  const square = (x: number, y: number, left: number) => x >= left && x < left + 16 && y >= 16 && y < 32;

  test("exact flows: the uncovered strip and the square's edges are masked, the rest certain", async () => {
    // Backward (t -> t-1) on frame t: the square's pixels came from 6 px left. Forward (t-1 -> t): the reverse.
    const backward = constantFlow(w, h, (x, y) => (square(x, y, 26) ? [-6, 0] : [0, 0]));
    const forward = constantFlow(w, h, (x, y) => (square(x, y, 20) ? [6, 0] : [0, 0]));
    const { certain, disoccluded } = await flowCertainty(backward, forward);
    for (let y = 16; y < 32; y++)
      for (let x = 20; x < 26; x++) {
        assert.equal(disoccluded[y * w + x], 1, `uncovered ${x},${y}`);
        assert.equal(certain[y * w + x], 0);
      }
    // The square's inside and the background away from it are trusted.
    for (const [x, y] of [
      [33, 24],
      [30, 20],
      [5, 5],
      [60, 40],
      [10, 24],
    ] as const)
      assert.equal(certain[y * w + x], 1, `certain at ${x},${y}`);
    // The square's left and right edges are motion boundaries (the flow jumps by 6 px there).
    assert.equal(certain[24 * w + 25], 0);
    assert.equal(certain[24 * w + 42], 0);
    const masked = certain.reduce((n, c) => n + (c === 0 ? 1 : 0), 0);
    assert.ok(masked < 0.15 * w * h, `${masked} pixels masked: only the strip and the edges`);
  });

  test("Farneback's flows on the frames themselves: most of the uncovered strip is masked, the far background is not", async () => {
    // A larger scene for Farneback's 31 px window: a 40 px square moving 8 px right over 128x96.
    const [W, H] = [128, 96];
    const inside = (x: number, y: number, left: number) => x >= left && x < left + 40 && y >= 28 && y < 68;
    const frame = (left: number) =>
      image(W, H, (x, y, k) => (inside(x, y, left) ? 255 - texture(x - left, y, k + 3) : texture(x, y, k)));
    const before = frame(40);
    const after = frame(48);
    const { certain } = await flowCertainty(
      await opticalFlow(after, before),
      await opticalFlow(before, after),
    );
    let strip = 0;
    for (let y = 30; y < 66; y++) for (let x = 41; x < 47; x++) strip += certain[y * W + x] === 0 ? 1 : 0;
    assert.ok(strip >= 0.8 * 36 * 6, `${strip} of ${36 * 6} uncovered pixels masked`);
    // Farneback's window smears the motion a little beyond the square: "far" is 16 px away.
    let far = 0;
    let count = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        if (x > 40 - 16 && x < 88 + 16 && y > 28 - 16 && y < 68 + 16) continue;
        far += certain[y * W + x] as number;
        count++;
      }
    assert.ok(far >= 0.95 * count, `${far} of ${count} far background pixels certain`);
  });
});

describe("the warping error", () => {
  test("is the mean squared difference over the certain pixels only", () => {
    const a = image(4, 1, () => 10);
    const b = image(4, 1, (x) => (x === 3 ? 200 : 13));
    const e = warpingError(a, b, Float32Array.from([1, 1, 1, 0]));
    assert.equal(e.sum / e.weight, 9);
    assert.equal(meanWarpingError([e, warpingError(a, a, Float32Array.from([1, 1, 1, 1]))]), (9 * 9) / 21);
  });
});
