/**
 * The objective on onnxruntime's WebGPU provider, run here through SwiftShader
 * (Vulkan on the CPU). Every WebGPU session is created with CPU fallback
 * disabled, so creating one proves that the whole graph runs on the GPU.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { RgbImage } from "../src/image/image.js";
import { toNetworkInput } from "../src/image/image.js";
import { loadImage, resizeImage } from "../src/image/io.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { VggWeights } from "../src/network/weights.js";
import { Objective } from "../src/objective/objective.js";
import type { ObjectiveOptions } from "../src/objective/options.js";
import { stylize } from "../src/stylize/stylize.js";
import { runCliAsync } from "./support/cli.js";
import { relativeError } from "./support/compare.js";
import {
  assertGradientClose as assertClose,
  type Golden,
  type GoldenCase,
  readF32,
  readGolden,
} from "./support/golden.js";
import { GOLDEN_DIR, needsShared } from "./support/shared.js";
import { needsSwiftShader } from "./support/swiftshader.js";

const shared = needsShared();
const gpu = needsSwiftShader();
const both = shared.skip ? shared : gpu;

describe("the objective on WebGPU (SwiftShader)", both, () => {
  let golden: Golden;
  let weights: VggWeights;
  let content: RgbImage;
  let style: RgbImage;
  let tmp: string;

  before(async () => {
    golden = readGolden();
    weights = loadManifestWeights(path.join(GOLDEN_DIR, "..", "models", "vgg19"));
    content = await loadImage(path.join(GOLDEN_DIR, "content.png"));
    style = await loadImage(path.join(GOLDEN_DIR, "style.png"));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-webgpu-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test("stylegram loss --device webgpu matches the golden values (max pooling)", async () => {
    const expected = golden.cases.max as GoldenCase;
    const grad = path.join(tmp, "grad.f32");
    const r = await runCliAsync(
      [
        "loss",
        "--content",
        path.join(GOLDEN_DIR, "content.png"),
        "--style",
        path.join(GOLDEN_DIR, "style.png"),
        "--image",
        path.join(GOLDEN_DIR, "x.png"),
        "--content-layers",
        golden.content_layers.join(","),
        "--style-layers",
        golden.style_layers.join(","),
        "--weights",
        path.join(GOLDEN_DIR, "..", "models", "vgg19"),
        "--device",
        "webgpu",
        "--grad-out",
        grad,
      ],
      { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES },
    );
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout) as GoldenCase;
    for (const [l, v] of Object.entries(expected.content)) {
      assert.ok(relativeError(e.content[l] as number, v) < 1e-3, `content ${l}: ${e.content[l]} vs ${v}`);
    }
    for (const [l, v] of Object.entries(expected.style)) {
      assert.ok(relativeError(e.style[l] as number, v) < 1e-3, `style ${l}: ${e.style[l]} vs ${v}`);
    }
    assert.ok(relativeError(e.tv, expected.tv) < 1e-3);
    assert.ok(relativeError(e.total, expected.total) < 1e-3, `total ${e.total} vs ${expected.total}`);
    const b = fs.readFileSync(grad);
    assertClose(
      new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4),
      readF32(expected.grads.total?.file as string),
      "gradient of the total",
    );
  });

  test("average pooling on WebGPU matches the golden values", async () => {
    const expected = golden.cases.avg as GoldenCase;
    const o = await Objective.create({
      weights,
      content,
      styles: [style],
      options: { pooling: "avg", contentLayers: golden.content_layers, styleLayers: golden.style_layers },
      runtime: { device: "webgpu" },
    });
    try {
      const e = await o.evaluate(toNetworkInput(await loadImage(path.join(GOLDEN_DIR, "x.png"))));
      assert.ok(relativeError(e.total, expected.total) < 1e-3, `total ${e.total} vs ${expected.total}`);
      assertClose(e.gradient, readF32(expected.grads.total?.file as string), "gradient of the total");
    } finally {
      await o.release();
    }
  });

  // Odd sizes take the pooling gradients' crop-and-pad paths; several layer choices cut the network
  // at different depths. Each must build with CPU fallback disabled and agree with the CPU.
  const choices: [string, ObjectiveOptions][] = [
    [
      "shallow and deep layers, max pooling",
      { contentLayers: ["relu1_1", "relu3_2"], styleLayers: ["relu2_2", "relu5_4"] },
    ],
    [
      "one style layer, avg pooling, no content",
      { contentLayers: [], styleLayers: ["relu3_1"], pooling: "avg" },
    ],
  ];
  for (const [name, options] of choices) {
    test(`${name}: runs wholly on the GPU and agrees with the CPU at 50x38`, async () => {
      const c = await resizeImage(content, 50, 38);
      const s = await resizeImage(style, 40, 36);
      const x = toNetworkInput(await resizeImage(await loadImage(path.join(GOLDEN_DIR, "x.png")), 50, 38));
      const results = [];
      for (const device of ["cpu", "webgpu"] as const) {
        const o = await Objective.create({ weights, content: c, styles: [s], options, runtime: { device } });
        try {
          results.push(await o.evaluate(x));
        } finally {
          await o.release();
        }
      }
      const [cpu, webgpu] = results as [
        Awaited<ReturnType<Objective["evaluate"]>>,
        Awaited<ReturnType<Objective["evaluate"]>>,
      ];
      assert.ok(relativeError(webgpu.total, cpu.total) < 1e-3, `total ${webgpu.total} vs ${cpu.total}`);
      assertClose(webgpu.gradient, cpu.gradient, "gradient");
    });
  }

  test("tiled on the GPU: the tile graphs run wholly there and agree with the untiled CPU evaluation", async () => {
    const options: ObjectiveOptions = { contentLayers: ["relu2_2"], styleLayers: ["relu1_1", "relu3_1"] };
    // Small, so that SwiftShader runs the few tiles quickly: 4 tiles of 16 px in crops of 48.
    const c = await resizeImage(content, 64, 48);
    const s = await resizeImage(style, 40, 36);
    const x = toNetworkInput(await resizeImage(await loadImage(path.join(GOLDEN_DIR, "x.png")), 64, 48));
    const results = [];
    for (const [device, tile] of [
      ["cpu", undefined],
      ["webgpu", 16],
    ] as const) {
      const o = await Objective.create({
        weights,
        content: c,
        styles: [s],
        options,
        runtime: { device },
      });
      try {
        if (tile !== undefined) assert.ok((o.tiling?.tiles ?? 0) >= 4, `${o.tiling?.tiles} tiles`);
        results.push(await o.evaluate(x));
      } finally {
        await o.release();
      }
    }
    const [cpu, webgpu] = results as [
      Awaited<ReturnType<Objective["evaluate"]>>,
      Awaited<ReturnType<Objective["evaluate"]>>,
    ];
    assert.ok(relativeError(webgpu.total, cpu.total) < 1e-3, `total ${webgpu.total} vs ${cpu.total}`);
    assertClose(webgpu.gradient, cpu.gradient, "gradient");
  });

  test("styles by region (masks, normalisers and targets as constants) agree with the CPU at 50x38", async () => {
    const c = await resizeImage(content, 50, 38);
    const styles = [await resizeImage(style, 40, 36), c];
    const x = toNetworkInput(await resizeImage(await loadImage(path.join(GOLDEN_DIR, "x.png")), 50, 38));
    const half = (w: number, h: number, top: boolean) => ({
      width: w,
      height: h,
      data: Float32Array.from({ length: w * h }, (_, p) => (p < (w * h) / 2 === top ? 1 : 0)),
    });
    const results = [];
    for (const device of ["cpu", "webgpu"] as const) {
      const o = await Objective.create({
        weights,
        content: c,
        styles,
        masks: [half(50, 38, true), half(50, 38, false)],
        styleMasks: [half(40, 36, false), undefined],
        options: { contentLayers: ["relu2_2"], styleLayers: ["relu1_1", "relu3_1"] },
        runtime: { device },
      });
      try {
        results.push(await o.evaluate(x));
      } finally {
        await o.release();
      }
    }
    const [cpu, webgpu] = results as [
      Awaited<ReturnType<Objective["evaluate"]>>,
      Awaited<ReturnType<Objective["evaluate"]>>,
    ];
    assert.ok(relativeError(webgpu.total, cpu.total) < 1e-3, `total ${webgpu.total} vs ${cpu.total}`);
    assertClose(webgpu.gradient, cpu.gradient, "gradient");
  });

  test("the temporal term (target and certainty as constants) agrees with the CPU at 50x38", async () => {
    const c = await resizeImage(content, 50, 38);
    const x = toNetworkInput(await resizeImage(await loadImage(path.join(GOLDEN_DIR, "x.png")), 50, 38));
    const temporal = {
      target: toNetworkInput(c),
      certainty: Float32Array.from({ length: 50 * 38 }, (_, p) => (p % 50 < 10 ? 0 : 1)),
    };
    const results = [];
    // In tiles it is fed like the content targets, which the tiled GPU test above covers.
    for (const device of ["cpu", "webgpu"] as const) {
      const o = await Objective.create({
        weights,
        content: c,
        styles: [style],
        temporal,
        options: { contentLayers: ["relu2_2"], styleLayers: ["relu1_1", "relu3_1"], temporalWeight: 20 },
        runtime: { device },
      });
      try {
        results.push(await o.evaluate(x));
      } finally {
        await o.release();
      }
    }
    const [cpu, ...gpus] = results as Awaited<ReturnType<Objective["evaluate"]>>[];
    for (const webgpu of gpus) {
      assert.ok(relativeError(webgpu.temporal as number, cpu?.temporal as number) < 1e-4, "temporal term");
      assert.ok(
        relativeError(webgpu.total, cpu?.total as number) < 1e-3,
        `total ${webgpu.total} vs ${cpu?.total}`,
      );
      assertClose(webgpu.gradient, cpu?.gradient as Float32Array, "gradient");
    }
  });

  test("a short stylization runs on WebGPU and lowers the loss", async () => {
    const seen: { total: number; device: string }[] = [];
    const r = await stylize({
      content,
      styles: [style],
      size: 32,
      iterations: 4,
      weights,
      device: "webgpu",
      onProgress: (p) => void seen.push({ total: p.total, device: p.device }),
    });
    assert.deepEqual([r.image.width, r.image.height], [32, 24]);
    assert.ok(seen.every((p) => p.device === "webgpu"));
    assert.ok(r.loss.total < (seen[0]?.total as number), `${r.loss.total} vs ${seen[0]?.total}`);
  });

  test("--device auto with only a software Vulkan driver runs on the CPU and says so", async () => {
    const r = await runCliAsync(
      [
        path.join(GOLDEN_DIR, "content.png"),
        path.join(GOLDEN_DIR, "style.png"),
        "-o",
        path.join(tmp, "auto.png"),
        "--size",
        "32",
        "--iterations",
        "1",
        "--weights",
        path.join(GOLDEN_DIR, "..", "models", "vgg19"),
        "--device",
        "auto",
      ],
      { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /computing on the CPU \(--device auto: only software Vulkan drivers: vk_swiftshader_icd.json\)/,
    );
  });

  test("--device webgpu without an adapter ends with a clear error that points at the driver and --device cpu", async () => {
    const r = await runCliAsync(
      [
        "loss",
        "--content",
        path.join(GOLDEN_DIR, "content.png"),
        "--style",
        path.join(GOLDEN_DIR, "style.png"),
        "--image",
        path.join(GOLDEN_DIR, "content.png"),
        "--weights",
        path.join(GOLDEN_DIR, "..", "models", "vgg19"),
        "--device",
        "webgpu",
      ],
      { VK_ICD_FILENAMES: path.join(tmp, "no-such-driver.json") },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /stylegram: no WebGPU adapter is usable here .*Vulkan driver.*--device cpu works on any machine/,
    );
    assert.doesNotMatch(r.stderr, /internal error|computing on the GPU|HDF5|XDG_RUNTIME_DIR|dawn/i);
  });
});
