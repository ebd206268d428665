/**
 * The temporal term of a video frame (src/losses/temporal.ts): its gradient against finite
 * differences, its value and gradient in the objective, and tiled equal to whole with it.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { before, describe, test } from "node:test";
import type { Graph, Tensor } from "../src/graph/graph.js";
import { toNetworkInput } from "../src/image/image.js";
import { loadImage } from "../src/image/io.js";
import { temporalLoss } from "../src/losses/temporal.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { VggWeights } from "../src/network/weights.js";
import { Objective } from "../src/objective/objective.js";
import type { ObjectiveOptions } from "../src/objective/options.js";
import { TargetCache } from "../src/objective/targets.js";
import { compareVectors, relativeError } from "./support/compare.js";
import { checkGradient } from "./support/finite-differences.js";
import { randomArray, rng } from "./support/random.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

describe("the temporal term", () => {
  test("its gradient agrees with central finite differences (soft certainty)", async () => {
    const [h, w] = [4, 5];
    const r = rng(7);
    const certainty = Float32Array.from({ length: h * w }, () => r());
    await checkGradient(
      [1, 3, h, w],
      (g: Graph, x: Tensor) =>
        temporalLoss(
          g,
          x,
          g.constant(randomArray(3 * h * w, 9), [1, 3, h, w]),
          g.constant(certainty, [1, 1, h, w]),
          3 * h * w,
        ),
      { seed: 3 },
    );
  });

  test("a tile's gradient agrees with finite differences too, zero where it owns nothing", async () => {
    const [h, w] = [4, 6];
    const owned = Float32Array.from({ length: h * w }, (_, p) => (p % w < 3 ? 1 : 0));
    await checkGradient(
      [1, 3, h, w],
      (g: Graph, x: Tensor) =>
        temporalLoss(
          g,
          x,
          g.constant(randomArray(3 * h * w, 11), [1, 3, h, w]),
          g.constant(
            Float32Array.from({ length: h * w }, (_, p) => (p % 5 === 0 ? 0 : 1)),
            [1, 1, h, w],
          ),
          3 * 10 * 10,
          g.constant(owned, [1, 1, h, w]),
        ),
      { seed: 5 },
    );
  });
});

describe("the temporal term in the objective", needsShared(), () => {
  let weights: VggWeights;
  before(() => {
    weights = loadManifestWeights(WEIGHTS_DIR);
  });

  const [width, height] = [163, 97];
  const options: ObjectiveOptions = {
    contentLayers: ["relu2_2"],
    styleLayers: ["relu1_1", "relu2_1"],
    temporalWeight: 30,
  };
  const frame = () => {
    const target = Float32Array.from({ length: 3 * width * height }, (_, i) => 40 * Math.cos(i * 0.11));
    // A disoccluded band (certainty 0) and soft values elsewhere.
    const certainty = Float32Array.from({ length: width * height }, (_, p) =>
      p % width < 20 ? 0 : 0.5 + 0.5 * Math.sin(p),
    );
    return { target, certainty };
  };
  const evaluate = async (tile: number | undefined, temporal: boolean, cache?: TargetCache) => {
    const content = await loadImage(path.join(IMAGES_DIR, "tubingen.jpg"), { exact: { width, height } });
    const style = await loadImage(path.join(IMAGES_DIR, "starry_night.jpg"), { longEdge: 90 });
    const objective = await Objective.create({
      weights,
      content,
      styles: [style],
      options,
      ...(tile === undefined ? {} : { tile }),
      ...(temporal ? { temporal: frame() } : {}),
      ...(cache ? { cache } : {}),
    });
    try {
      const x = toNetworkInput(content);
      for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) + 25 * Math.sin(i * 0.37);
      return { x, e: await objective.evaluate(x), tiles: objective.tiling?.tiles ?? 1 };
    } finally {
      await objective.release();
    }
  };

  test("its value is the certain pixels' mean squared difference, and its gradient 2 w c (x - target) / count", async () => {
    const without = await evaluate(undefined, false);
    const withIt = await evaluate(undefined, true);
    const { target, certainty } = frame();
    const plane = width * height;
    const count = 3 * plane;
    let expected = 0;
    const x = withIt.x;
    for (let i = 0; i < count; i++) {
      const d = (x[i] as number) - (target[i] as number);
      expected += (certainty[i % plane] as number) * d * d;
    }
    expected /= count;
    assert.ok(
      relativeError(expected, withIt.e.temporal as number) < 1e-4,
      `${withIt.e.temporal} vs ${expected}`,
    );
    assert.equal(without.e.temporal, undefined);
    assert.ok(relativeError(without.e.total + 30 * expected, withIt.e.total) < 1e-4);
    // The gradient adds exactly the temporal term's.
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < count; i++) {
      const d = (x[i] as number) - (target[i] as number);
      const own = (2 * 30 * (certainty[i % plane] as number) * d) / count;
      const added = (withIt.e.gradient[i] as number) - (without.e.gradient[i] as number);
      worst = Math.max(worst, Math.abs(added - own));
      scale = Math.max(scale, Math.abs(own));
    }
    assert.ok(scale > 0 && worst < 1e-3 * scale, `gradient off by ${worst} (scale ${scale})`);
  });

  test("in tiles it equals the untiled term and gradient; the style targets come from the cache the second time", async () => {
    const cache = new TargetCache();
    const whole = await evaluate(undefined, true, cache);
    assert.equal(cache.size, 1);
    const tiled = await evaluate(32, true, cache);
    assert.equal(cache.size, 1, "the same painting at the same size is not computed again");
    assert.ok(tiled.tiles >= 4, `${tiled.tiles} tiles`);
    const near = (a: number, b: number, what: string) =>
      assert.ok(relativeError(b, a) < 1e-4, `${what}: untiled ${a}, tiled ${b}`);
    near(whole.e.temporal as number, tiled.e.temporal as number, "temporal");
    near(whole.e.total, tiled.e.total, "total");
    for (const [l, v] of Object.entries(whole.e.style)) near(v, tiled.e.style[l] as number, l);
    const { cosine, relL2 } = compareVectors(tiled.e.gradient, whole.e.gradient);
    assert.ok(cosine > 0.99999, `gradient cosine ${cosine}`);
    assert.ok(relL2 < 1e-4, `gradient relative L2 ${relL2}`);
  });

  test("a temporal target of another size is refused, naming it", async () => {
    const content = await loadImage(path.join(IMAGES_DIR, "tubingen.jpg"), { exact: { width, height } });
    await assert.rejects(
      Objective.create({
        weights,
        content,
        styles: [content],
        options,
        temporal: { target: new Float32Array(10), certainty: new Float32Array(width * height) },
      }),
      /temporal target must have the content's size 163x97/,
    );
  });
});
