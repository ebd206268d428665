import assert from "node:assert/strict";
import path from "node:path";
import { before, describe, test } from "node:test";
import { toNetworkInput } from "../src/image/image.js";
import { loadImage } from "../src/image/io.js";
import type { Mask } from "../src/image/masks.js";
import { sourceSize } from "../src/image/source.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { VggWeights } from "../src/network/weights.js";
import { chooseTile, objectiveBytes, tiledObjectiveBytes } from "../src/objective/memory.js";
import { type Evaluation, Objective, type ObjectiveInit } from "../src/objective/objective.js";
import type { ObjectiveOptions } from "../src/objective/options.js";
import {
  ALIGN,
  cropSize,
  haloFor,
  ownMask,
  planTiles,
  tileCount,
  validMask,
} from "../src/objective/tiling.js";
import type { Stage } from "../src/stylize/options.js";
import { planEvaluation } from "../src/stylize/plan.js";
import { stylize } from "../src/stylize/stylize.js";
import { runCli } from "./support/cli.js";
import { compareVectors, relativeError } from "./support/compare.js";
import { GOLDEN_DIR, IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const DEFAULT_LAYERS = ["relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];

describe("tile plans", () => {
  test("the halo covers the deepest layer's reach, on multiples of 16", () => {
    // relu5_1: 5 wrong positions at stride 16 after the convolutions and poolings from a crop's edge.
    assert.equal(haloFor(DEFAULT_LAYERS), 80);
    assert.equal(haloFor(["relu4_2"]), 48);
    assert.equal(haloFor(["relu3_1", "relu1_1"]), 16);
    assert.equal(haloFor(["relu1_1"]), 16);
  });

  for (const [width, height, tile, halo] of [
    [4096, 4096, 512, 80],
    [1000, 333, 96, 80],
    [233, 171, 48, 16],
    [90, 300, 16, 16],
    [200, 150, 512, 80],
  ] as const) {
    test(`${width}x${height} in tiles of ${tile}: every pixel and feature owned once, every crop aligned and large enough`, () => {
      const plan = planTiles(width, height, cropSize(tile, halo, width, height), halo);
      const owners = new Uint8Array(width * height);
      for (const t of plan.tiles) {
        assert.equal(t.top % ALIGN, 0);
        assert.equal(t.left % ALIGN, 0);
        // The crop reaches `halo` past the owned pixels on every side, or to the picture's edge.
        assert.ok(t.ownTop - t.top >= halo || t.top === 0, `top ${JSON.stringify(t)}`);
        assert.ok(t.ownLeft - t.left >= halo || t.left === 0, `left ${JSON.stringify(t)}`);
        assert.ok(t.top + plan.cropHeight - t.ownBottom >= halo || t.top + plan.cropHeight >= height);
        assert.ok(t.left + plan.cropWidth - t.ownRight >= halo || t.left + plan.cropWidth >= width);
        for (let y = t.ownTop; y < t.ownBottom; y++)
          for (let x = t.ownLeft; x < t.ownRight; x++)
            owners[y * width + x] = (owners[y * width + x] ?? 0) + 1;
      }
      assert.ok(
        owners.every((n) => n === 1),
        "each pixel has exactly one owner",
      );
      // At every pooling level the owned feature positions partition the (floored) feature map.
      for (let level = 0; level <= 4; level++) {
        const fh = Math.floor(height / 2 ** level);
        const fw = Math.floor(width / 2 ** level);
        let owned = 0;
        for (const t of plan.tiles) {
          const own = ownMask(plan, t, level);
          const valid = validMask(plan, t, level);
          own.forEach((v, i) => {
            assert.ok(v <= (valid[i] as number), "an owned position lies in the picture");
          });
          owned += own.reduce((a, b) => a + b, 0);
        }
        assert.equal(owned, fh * fw, `level ${level}`);
      }
    });
  }

  test("auto-tiling takes the tiles with the least work among those that fit, and none when the whole fits", () => {
    const work = (w: number, h: number, t: number) => {
      const plan = planTiles(w, h, cropSize(t, 80, w, h), 80);
      return plan.tiles.length * plan.cropWidth * plan.cropHeight;
    };
    const pick = (w: number, h: number, budget: number) =>
      chooseTile(w, h, DEFAULT_LAYERS, ["relu4_2"], (bytes) => bytes <= budget);
    assert.deepEqual(pick(512, 512, 64e9), { tiled: false });
    const budget = 10e9;
    const chosen = pick(2048, 1536, budget).tile as number;
    assert.ok(chosen !== undefined && chosen % ALIGN === 0, String(chosen));
    // The largest tile that fits does more work than the one chosen (it cuts 2048 px into crops that overlap more).
    let largest = 2048;
    while (tiledObjectiveBytes(2048, 1536, DEFAULT_LAYERS, ["relu4_2"], largest) > budget) largest -= ALIGN;
    assert.ok(largest > chosen, `${largest} vs ${chosen}`);
    assert.ok(work(2048, 1536, chosen) < work(2048, 1536, largest));
    for (let t = 160; t <= largest; t += ALIGN)
      assert.ok(work(2048, 1536, chosen) <= work(2048, 1536, t), String(t));
    assert.deepEqual(pick(4096, 4096, 1e9), { tiled: true }, "nothing fits in 1 GB");
  });

  test("tileCount counts planTiles' tiles without making them", () => {
    for (const [w, h] of [
      [100, 100],
      [2048, 1536],
      [4097, 333],
      [62000, 16],
    ] as const) {
      for (const t of [64, 160, 512, 1000]) {
        const crop = cropSize(t, 80, w, h);
        assert.equal(
          tileCount(w, h, crop, 80),
          planTiles(w, h, crop, 80).tiles.length,
          `${w}x${h} tile ${t}`,
        );
      }
    }
  });

  test("a tiled evaluation's memory is bounded by the tile", () => {
    const whole = objectiveBytes(4096, 4096, DEFAULT_LAYERS);
    const tiled = tiledObjectiveBytes(4096, 4096, DEFAULT_LAYERS, ["relu4_2"], 512);
    assert.ok(whole > 60e9, `whole: ${whole}`);
    assert.ok(tiled < 6e9, `tiled: ${tiled}`);
    assert.ok(
      tiledObjectiveBytes(4096, 4096, DEFAULT_LAYERS, ["relu4_2"], 256) < tiled,
      "smaller tiles need less",
    );
  });
});

describe("tiled evaluation equals the untiled one", needsShared(), () => {
  let weights: VggWeights;
  before(() => {
    weights = loadManifestWeights(WEIGHTS_DIR);
  });

  const evaluate = async (
    width: number,
    height: number,
    options: ObjectiveOptions,
    tile: number | undefined,
    styleEdge: number,
    extra: Partial<ObjectiveInit> & { evaluations?: number } = {},
  ): Promise<{ e: Evaluation; tiles: number }> => {
    const content = await loadImage(path.join(IMAGES_DIR, "tubingen.jpg"), { exact: { width, height } });
    const style = await loadImage(path.join(IMAGES_DIR, "starry_night.jpg"), { longEdge: styleEdge });
    const { evaluations = 1, ...init } = extra;
    const objective = await Objective.create({
      weights,
      content,
      styles: [style],
      options,
      ...(tile === undefined ? {} : { tile }),
      ...init,
    });
    try {
      // A point away from the content image, so that every term and the gradient are far from zero.
      const x = toNetworkInput(content);
      for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) + 25 * Math.sin(i * 0.37);
      // int8 calibrates in float32 first: its later evaluations are the int8 ones.
      let e = await objective.evaluate(x);
      for (let k = 1; k < evaluations; k++) e = await objective.evaluate(x);
      return { e, tiles: objective.tiling?.tiles ?? 1 };
    } finally {
      await objective.release();
    }
  };

  // The style image is cut into tiles too where it is larger than a crop (the third case's).
  const cases: {
    name: string;
    width: number;
    height: number;
    tile: number;
    styleEdge: number;
    options: ObjectiveOptions;
  }[] = [
    { name: "default layers, max pooling", width: 272, height: 112, tile: 32, styleEdge: 100, options: {} },
    {
      name: "default layers, average pooling",
      width: 250,
      height: 101,
      tile: 48,
      styleEdge: 90,
      options: { pooling: "avg" },
    },
    {
      name: "shallow layers, average pooling, sizes not multiples of the tile, a style image in tiles",
      width: 233,
      height: 171,
      tile: 48,
      styleEdge: 300,
      options: {
        pooling: "avg",
        contentLayers: ["relu2_2"],
        styleLayers: ["relu1_1", "relu2_2", "relu3_1"],
        styleLayerWeights: [1, 2, 3],
      },
    },
    {
      name: "two content layers, odd sizes",
      width: 163,
      height: 97,
      tile: 16,
      styleEdge: 120,
      options: { contentLayers: ["relu3_2", "relu1_2"], styleLayers: ["relu3_1", "relu2_1"] },
    },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.width}x${c.height} in tiles of ${c.tile}`, async () => {
      const whole = await evaluate(c.width, c.height, c.options, undefined, c.styleEdge);
      const tiled = await evaluate(c.width, c.height, c.options, c.tile, c.styleEdge);
      assert.ok(tiled.tiles >= 4, `${tiled.tiles} tiles: the case must cut the picture`);
      const near = (a: number, b: number, what: string) =>
        assert.ok(relativeError(b, a) < 1e-4, `${what}: untiled ${a}, tiled ${b}`);
      near(whole.e.total, tiled.e.total, "total");
      near(whole.e.tv, tiled.e.tv, "tv");
      for (const [l, v] of Object.entries(whole.e.content)) near(v, tiled.e.content[l] as number, l);
      for (const [l, v] of Object.entries(whole.e.style)) near(v, tiled.e.style[l] as number, l);
      const { cosine, relL2 } = compareVectors(tiled.e.gradient, whole.e.gradient);
      assert.ok(cosine > 0.99999, `gradient cosine ${cosine}`);
      assert.ok(relL2 < 1e-4, `gradient relative L2 ${relL2}`);
    });
  }

  const soft = (w: number, h: number, f: (x: number, y: number) => number): Mask => {
    const data = new Float32Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = f(x, y);
    return { width: w, height: h, data };
  };

  test("styles by region, in tiles: two styles under soft complementary masks, one with a style mask", async () => {
    const [w, h] = [240, 150];
    const sky = soft(w, h, (_x, y) => Math.min(1, Math.max(0, (70 - y) / 40)));
    const ground = soft(w, h, (x, y) => 1 - (sky.data[y * w + x] as number));
    const scream = await loadImage(path.join(IMAGES_DIR, "the_scream.jpg"), { longEdge: 140 });
    const styleMask = soft(scream.width, scream.height, (x) => (x < scream.width / 2 ? 1 : 0.3));
    const run = async (tile?: number) => {
      const content = await loadImage(path.join(IMAGES_DIR, "tubingen.jpg"), {
        exact: { width: w, height: h },
      });
      const starry = await loadImage(path.join(IMAGES_DIR, "starry_night.jpg"), { longEdge: 110 });
      const objective = await Objective.create({
        weights,
        content,
        styles: [starry, scream],
        masks: [sky, ground],
        styleMasks: [undefined, styleMask],
        options: { styleBlend: [2, 1] },
        ...(tile === undefined ? {} : { tile }),
      });
      try {
        const x = toNetworkInput(content);
        for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) + 25 * Math.sin(i * 0.37);
        return { e: await objective.evaluate(x), tiles: objective.tiling?.tiles ?? 1 };
      } finally {
        await objective.release();
      }
    };
    const whole = await run();
    const tiled = await run(48);
    assert.ok(tiled.tiles >= 4, `${tiled.tiles} tiles`);
    const near = (a: number, b: number, what: string) =>
      assert.ok(relativeError(b, a) < 1e-4, `${what}: untiled ${a}, tiled ${b}`);
    near(whole.e.total, tiled.e.total, "total");
    for (const [l, v] of Object.entries(whole.e.style)) near(v, tiled.e.style[l] as number, l);
    for (const [l, v] of Object.entries(whole.e.content)) near(v, tiled.e.content[l] as number, l);
    const { cosine, relL2 } = compareVectors(tiled.e.gradient, whole.e.gradient);
    assert.ok(cosine > 0.99999, `gradient cosine ${cosine}`);
    assert.ok(relL2 < 1e-4, `gradient relative L2 ${relL2}`);
  });

  test("int8 in tiles agrees with int8 whole within int8's own tolerance", async () => {
    // The third evaluation: two calibrate in float32, then int8 with the scales they measured.
    const int8 = { precision: "int8" as const, evaluations: 3 };
    const float = await evaluate(240, 160, {}, undefined, 120);
    const whole = await evaluate(240, 160, {}, undefined, 120, int8);
    const tiled = await evaluate(240, 160, {}, 48, 120, int8);
    assert.ok(tiled.tiles >= 4, `${tiled.tiles} tiles`);
    // int8 against float32: what int8 is; tiled int8 against whole int8 must be no further apart.
    const own = relativeError(whole.e.total, float.e.total);
    const apart = relativeError(tiled.e.total, whole.e.total);
    assert.ok(
      apart < Math.max(0.02, 2 * own),
      `total: whole ${whole.e.total}, tiled ${tiled.e.total} (int8 vs fp32: ${own})`,
    );
    const ownCosine = compareVectors(whole.e.gradient, float.e.gradient).cosine;
    const { cosine } = compareVectors(tiled.e.gradient, whole.e.gradient);
    assert.ok(cosine > Math.min(0.99, ownCosine), `gradient cosine ${cosine} (int8 vs fp32: ${ownCosine})`);
  });

  test("stylize() tiles on its own when the picture would not fit, and ends where the untiled run ends", async () => {
    const common = {
      content: path.join(IMAGES_DIR, "tubingen.jpg"),
      styles: [path.join(IMAGES_DIR, "starry_night.jpg")],
      size: 160,
      iterations: 4,
      weights,
      styleLayers: ["relu1_1", "relu2_1", "relu3_1"],
      contentLayers: ["relu3_2"],
    };
    const whole = await stylize(common);
    // Memory for the tiles but not for the whole picture: the check before the run picks the tile.
    const options = { ...common, styleLayers: common.styleLayers, contentLayers: common.contentLayers };
    const checked = await planEvaluation({
      content: common.content,
      styles: common.styles,
      sizes: [160],
      styleScale: 1,
      objective: (await import("../src/objective/options.js")).resolveObjective(options, 1),
      optimizer: "lbfgs",
      historySize: undefined,
      maxMemory: 1e12,
      iterations: [4],
      imageSize: sourceSize,
    });
    const wholeBytes = checked.scales[0]?.peakBytes as number;
    const stages: Stage[] = [];
    const tiled = await stylize({ ...common, maxMemory: wholeBytes - 1, onStage: (s) => stages.push(s) });
    const stage = stages.find((s) => s.stage === "objective");
    assert.ok(stage?.tile !== undefined && stage.tile < 160, `tile ${stage?.tile}`);
    assert.ok((stage?.estimatedBytes as number) < wholeBytes);
    assert.ok(
      relativeError(tiled.loss.total, whole.loss.total) < 1e-3,
      `${tiled.loss.total} vs ${whole.loss.total}`,
    );
    let same = 0;
    tiled.image.data.forEach((v, i) => {
      if (Math.abs(v - (whole.image.data[i] as number)) <= 1) same++;
    });
    assert.ok(same / tiled.image.data.length > 0.999, `${same} of ${tiled.image.data.length} values agree`);
  });

  test("stylize() runs int8 and styles by region in tiles when asked, and says so", async () => {
    const stages: Stage[] = [];
    const white = { width: 96, height: 72, data: new Uint8Array(96 * 72 * 3).fill(255) };
    const result = await stylize({
      content: path.join(IMAGES_DIR, "tubingen.jpg"),
      styles: [path.join(IMAGES_DIR, "starry_night.jpg")],
      masks: [white],
      size: 96,
      iterations: 4,
      weights,
      tile: 32,
      precision: "int8",
      onStage: (s) => stages.push(s),
    });
    assert.equal(result.iterations, 4);
    assert.ok(Number.isFinite(result.loss.total));
    assert.equal(stages.find((s) => s.stage === "objective")?.tile, 32);
  });

  test("stylegram loss --tile gives the untiled numbers; a bad --tile names the fix", () => {
    const args = [
      "loss",
      "--content",
      path.join(GOLDEN_DIR, "content.png"),
      "--style",
      path.join(GOLDEN_DIR, "style.png"),
      "--image",
      path.join(GOLDEN_DIR, "x.png"),
      "--weights",
      WEIGHTS_DIR,
      "--content-layers",
      "relu2_2",
      "--style-layers",
      "relu1_1,relu2_1,relu3_1",
    ];
    const whole = runCli(args);
    const tiled = runCli([...args, "--tile", "16"]);
    assert.equal(whole.code, 0, whole.stderr);
    assert.equal(tiled.code, 0, tiled.stderr);
    const a = JSON.parse(whole.stdout);
    const b = JSON.parse(tiled.stdout);
    assert.ok(relativeError(b.total, a.total) < 1e-4, `${b.total} vs ${a.total}`);
    for (const l of Object.keys(a.style)) assert.ok(relativeError(b.style[l], a.style[l]) < 1e-4, l);
    const bad = runCli([...args, "--tile", "8"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--tile must be a whole number >= 16, got/);
  });
});

describe("a GPU's largest buffer (WebGPU's maxStorageBufferBindingSize) in the plan", () => {
  // conv1 at 1024 x 768 is 64 x 1024 x 768 floats, 201 MB: over the 128 MiB WebGPU grants by default.
  const picture = { width: 1024, height: 768, data: new Uint8Array(3 * 1024 * 768) };
  const style = { width: 512, height: 384, data: new Uint8Array(3 * 512 * 384) };
  const request = async (extra: { maxBindingBytes?: number; tile?: number }) =>
    planEvaluation({
      content: picture,
      styles: [style],
      sizes: [1024],
      styleScale: 1,
      objective: (await import("../src/objective/options.js")).resolveObjective({}, 1),
      optimizer: "lbfgs",
      historySize: undefined,
      maxMemory: 1e12,
      device: "webgpu",
      ...extra,
    });
  const LIMIT = 128 * 2 ** 20;

  test("a picture whose conv1 activation is over it is evaluated in tiles whose crops fit", async () => {
    const whole = await request({});
    assert.equal(whole.scales[0]?.tile, undefined, "with memory to spare and no buffer limit: whole");
    const plan = await request({ maxBindingBytes: LIMIT });
    const tile = plan.scales[0]?.tile;
    assert.ok(tile !== undefined && tile < 1024, `tile ${tile}`);
    const { largestActivationBytes } = await import("../src/objective/memory.js");
    const { cropSize, haloFor } = await import("../src/objective/tiling.js");
    const layers = (await import("../src/objective/options.js")).resolveObjective({}, 1);
    const all = [...new Set([...layers.contentLayers, ...layers.styleLayers])];
    const crop = cropSize(tile, haloFor(all), 1024, 768);
    assert.ok(largestActivationBytes(crop.cropWidth, crop.cropHeight, all) <= LIMIT);
  });

  test("a tile asked for whose crops are over it is refused, naming one that fits", async () => {
    await assert.rejects(request({ maxBindingBytes: LIMIT, tile: 960 }), (e: Error) => {
      assert.match(
        e.message,
        /tiles of 960 px make crops of .* over the most one buffer of this GPU holds \(.*\): use .*tile.* \d+/,
      );
      return true;
    });
  });
});
