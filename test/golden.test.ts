import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { RgbImage } from "../src/image/image.js";
import { toNetworkInput } from "../src/image/image.js";
import { loadImage } from "../src/image/io.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { Pooling } from "../src/network/vgg19.js";
import type { VggWeights } from "../src/network/weights.js";
import { Objective } from "../src/objective/objective.js";
import type { ObjectiveOptions } from "../src/objective/options.js";
import { relativeError } from "./support/compare.js";
import { assertGradientClose, type Golden, type GoldenCase, readF32, readGolden } from "./support/golden.js";
import { GOLDEN_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const shared = needsShared();

function assertGradient(got: Float32Array, file: string, what: string) {
  assertGradientClose(got, readF32(file), what);
}

describe("objective matches reference.py's golden values", shared, () => {
  let golden: Golden;
  let weights: VggWeights;
  let content: RgbImage;
  let style: RgbImage;
  let x: Float32Array;
  const objectives: Objective[] = [];

  before(async () => {
    golden = readGolden();
    weights = loadManifestWeights(WEIGHTS_DIR);
    content = await loadImage(path.join(GOLDEN_DIR, "content.png"));
    style = await loadImage(path.join(GOLDEN_DIR, "style.png"));
    x = toNetworkInput(await loadImage(path.join(GOLDEN_DIR, "x.png")));
  });
  after(async () => {
    for (const o of objectives) await o.release();
  });

  const make = async (options: ObjectiveOptions) => {
    const o = await Objective.create({ weights, content, styles: [style], options });
    objectives.push(o);
    return o;
  };

  for (const pooling of ["max", "avg"] as Pooling[]) {
    test(`${pooling} pooling: every term, the total and its gradient`, async () => {
      const expected = golden.cases[pooling] as GoldenCase;
      const o = await make({
        pooling,
        contentLayers: golden.content_layers,
        styleLayers: golden.style_layers,
        contentWeight: 5,
        styleWeight: 500,
        tvWeight: 1e-3,
      });
      const e = await o.evaluate(x);
      for (const [l, v] of Object.entries(expected.content)) {
        assert.ok(relativeError(e.content[l] as number, v) < 1e-3, `content ${l}: ${e.content[l]} vs ${v}`);
      }
      for (const [l, v] of Object.entries(expected.style)) {
        assert.ok(relativeError(e.style[l] as number, v) < 1e-3, `style ${l}: ${e.style[l]} vs ${v}`);
      }
      assert.ok(relativeError(e.tv, expected.tv) < 1e-3, `tv: ${e.tv} vs ${expected.tv}`);
      assert.ok(relativeError(e.total, expected.total) < 1e-3, `total: ${e.total} vs ${expected.total}`);
      assertGradient(e.gradient, expected.grads.total?.file as string, "gradient of the total");
    });

    test(`${pooling} pooling: the gradient of each term alone`, async () => {
      const expected = golden.cases[pooling] as GoldenCase;
      for (const l of golden.style_layers) {
        const o = await make({ pooling, contentLayers: [], styleLayers: [l], styleWeight: 1, tvWeight: 0 });
        assertGradient(
          (await o.evaluate(x)).gradient,
          expected.grads[`style_${l}`]?.file as string,
          `style ${l}`,
        );
      }
      const c = await make({
        pooling,
        contentLayers: ["relu4_2"],
        styleLayers: [],
        contentWeight: 1,
        tvWeight: 0,
      });
      assertGradient(
        (await c.evaluate(x)).gradient,
        expected.grads.content_relu4_2?.file as string,
        "content relu4_2",
      );
      const tv = await make({ pooling, contentLayers: [], styleLayers: [], tvWeight: 1 });
      assertGradient((await tv.evaluate(x)).gradient, expected.grads.tv?.file as string, "tv");
    });
  }
});
