import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../src/errors.js";
import { deepest, featureSize, parseLayer, RELU_LAYERS } from "../src/network/layers.js";
import { normaliseWeights, resolveObjective } from "../src/objective/options.js";
import { minimumSize } from "../src/objective/size.js";

test("layer names and 1-based indices", () => {
  assert.equal(RELU_LAYERS.length, 16);
  assert.equal(parseLayer("1"), "relu1_1");
  assert.equal(parseLayer("10"), "relu4_2");
  assert.equal(parseLayer("13"), "relu5_1");
  assert.equal(parseLayer(" RELU3_4 "), "relu3_4");
  assert.throws(() => parseLayer("0"), UsageError);
  assert.throws(() => parseLayer("conv4_2"), /unknown layer/);
});

test("feature sizes floor at each pooling; the deepest layer sets the minimum image size", () => {
  assert.deepEqual(featureSize(96, 128, "relu4_2"), [12, 16]);
  assert.deepEqual(featureSize(95, 33, "relu2_1"), [47, 16]);
  assert.equal(deepest(["relu3_1", "relu5_1", "relu1_1"]), "relu5_1");
  assert.equal(minimumSize(["relu1_1"]), 1);
  assert.equal(minimumSize(["relu4_2", "relu2_1"]), 8);
});

test("per-layer and blend weights are normalised to sum 1; bad ones are refused", () => {
  assert.deepEqual(normaliseWeights("w", [1, 3], 2), [0.25, 0.75]);
  assert.deepEqual(normaliseWeights("w", undefined, 4), [0.25, 0.25, 0.25, 0.25]);
  assert.throws(() => normaliseWeights("w", [0, 0], 2), /must not all be zero/);
  assert.throws(() => normaliseWeights("w", [1, -1], 2), UsageError);
  const o = resolveObjective(
    { styleLayers: ["1", "relu2_1"], styleLayerWeights: [2, 2], styleBlend: [1, 4] },
    2,
  );
  assert.deepEqual(o.styleLayers, ["relu1_1", "relu2_1"]);
  assert.deepEqual(o.styleLayerWeights, [0.5, 0.5]);
  assert.deepEqual(o.styleBlend, [0.2, 0.8]);
  assert.throws(() => resolveObjective({ styleLayers: ["relu1_1", "1"] }, 1), /names relu1_1 twice/);
});
