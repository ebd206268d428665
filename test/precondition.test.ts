/**
 * The pyramid preconditioner is a linear change of variables (symmetric positive definite), so the
 * objective and its minima do not change; what it changes is how fast L-BFGS gets there.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";
import { computeLoss } from "../src/api/loss.js";
import { UsageError } from "../src/errors.js";
import type { RgbImage } from "../src/image/image.js";
import { loadImage } from "../src/image/io.js";
import { pyramidPreconditioner, pyramidRadius } from "../src/stylize/precondition.js";
import { stylize } from "../src/stylize/stylize.js";
import { randomArray } from "./support/random.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * (b[i] as number), 0);

test("P is symmetric and positive definite, and the identity on nothing smooth", () => {
  const [w, h] = [37, 23];
  const p = pyramidPreconditioner(w, h, 3, 4);
  const u = randomArray(3 * w * h, 1);
  const v = randomArray(3 * w * h, 2);
  const pu = new Float32Array(u.length);
  const pv = new Float32Array(v.length);
  p.apply(u, pu);
  p.apply(v, pv);
  const a = dot(pu, v);
  const b = dot(u, pv);
  assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(a)), `<Pu, v> = ${a}, <u, Pv> = ${b}`);
  assert.ok(dot(pu, u) >= dot(u, u), "u'Pu >= u'u: P = I + a positive semi-definite blur");
  // A constant picture away from the edges is blurred to itself: P multiplies it by 1 + 4.
  const flat = new Float32Array(3 * w * h).fill(1);
  const pf = new Float32Array(flat.length);
  p.apply(flat, pf);
  assert.ok(Math.abs((pf[11 * w + 18] as number) - 5) < 1e-5, String(pf[11 * w + 18]));
  assert.equal(pyramidRadius({ width: 256, height: 192 }), 8);
  assert.equal(pyramidRadius({ width: 384, height: 512 }), 16);
});

describe("bounds and the pyramid on a real run", needsShared(), () => {
  const common = {
    content: path.join(IMAGES_DIR, "tubingen.jpg"),
    styles: [path.join(IMAGES_DIR, "starry_night.jpg")],
    size: 96,
    iterations: 40,
    weights: WEIGHTS_DIR,
  };
  /** The loss of the picture as saved (0..255 integers), by the same objective. */
  const savedLoss = async (image: RgbImage) =>
    (
      await computeLoss({
        // The photo and the painting as stylize() sized them (the style's long edge is the size).
        content: await loadImage(common.content, { longEdge: 96 }),
        styles: [await loadImage(common.styles[0] as string, { longEdge: 96 })],
        image,
        weights: WEIGHTS_DIR,
      })
    ).total;

  test("unbounded, the pyramid reaches a lower loss than pixels in the same evaluations", async () => {
    const run = async (precondition: "pyramid" | "none") =>
      (await stylize({ ...common, precondition, bounds: "none" })).loss.total;
    const pixels = await run("none");
    const pyramid = await run("pyramid");
    assert.ok(pyramid < 0.97 * pixels, `pyramid ${pyramid}, pixels ${pixels}`);
  });

  test("bounds pixels (the default): the saved picture is the one optimised, and better than an unbounded run's", async () => {
    const bounded = await stylize(common);
    const unbounded = await stylize({ ...common, bounds: "none" });
    const b = await savedLoss(bounded.image);
    const u = await savedLoss(unbounded.image);
    // Clipping only when saving undoes part of what the unbounded run reached.
    assert.ok(Math.abs(b - bounded.loss.total) < 0.01 * b, `saved ${b}, optimised ${bounded.loss.total}`);
    assert.ok(u > 1.03 * unbounded.loss.total, `saved ${u}, optimised ${unbounded.loss.total}`);
    assert.ok(b < u, `bounded ${b}, unbounded ${u}`);
  });

  test("the pyramid with bounds pixels is refused, naming bounds none", async () => {
    await assert.rejects(
      stylize({ ...common, precondition: "pyramid" }),
      (e: Error) => e instanceof UsageError && /precondition: "pyramid".*add bounds: "none"/.test(e.message),
    );
  });
});
