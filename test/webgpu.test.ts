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
import { loadImage, resizeImage, saveImage } from "../src/image/io.js";
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
  readGolden,
} from "./support/golden.js";
import { GOLDEN_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";
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

  // SwiftShader runs one 96x128 evaluation of the default objective in about 90 s, so the GPU is
  // checked against the CPU at 50x38 (the CPU against the golden values: golden.test.ts).
  test("stylegram loss --device webgpu equals --device cpu on the default objective (every term, the gradient)", async () => {
    const files: string[] = [];
    for (const [name, img] of [
      ["content", content],
      ["style", style],
      ["x", await loadImage(path.join(GOLDEN_DIR, "x.png"))],
    ] as const) {
      const file = path.join(tmp, `${name}-50.png`);
      await saveImage(file, await resizeImage(img, name === "style" ? 40 : 50, name === "style" ? 36 : 38));
      files.push(file);
    }
    const [c, s, x] = files as [string, string, string];
    const run = async (device: string) => {
      const grad = path.join(tmp, `grad-${device}.f32`);
      const r = await runCliAsync(
        [
          "loss",
          "--content",
          c,
          "--style",
          s,
          "--image",
          x,
          "--weights",
          WEIGHTS_DIR,
          "--device",
          device,
          "--grad-out",
          grad,
        ],
        { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES },
      );
      assert.equal(r.code, 0, r.stderr);
      const b = fs.readFileSync(grad);
      return {
        e: JSON.parse(r.stdout) as GoldenCase,
        grad: new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4),
      };
    };
    const cpu = await run("cpu");
    const gpu = await run("webgpu");
    for (const [l, v] of Object.entries(cpu.e.content)) {
      assert.ok(
        relativeError(gpu.e.content[l] as number, v) < 1e-3,
        `content ${l}: ${gpu.e.content[l]} vs ${v}`,
      );
    }
    assert.deepEqual(Object.keys(gpu.e.style), golden.style_layers);
    for (const [l, v] of Object.entries(cpu.e.style)) {
      assert.ok(relativeError(gpu.e.style[l] as number, v) < 1e-3, `style ${l}: ${gpu.e.style[l]} vs ${v}`);
    }
    assert.ok(relativeError(gpu.e.tv, cpu.e.tv) < 1e-3);
    assert.ok(relativeError(gpu.e.total, cpu.e.total) < 1e-3, `total ${gpu.e.total} vs ${cpu.e.total}`);
    assertClose(gpu.grad, cpu.grad, "gradient of the total");
  });

  // Odd sizes take the pooling gradients' crop-and-pad paths (max pooling: the default objective
  // above); another layer choice cuts the network elsewhere. Each must build with CPU fallback
  // disabled and agree with the CPU.
  const choices: [string, ObjectiveOptions][] = [
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
    // Two blocks (one pooling in each crop): the tile graphs' inputs and crops, at a small cost.
    const options: ObjectiveOptions = { contentLayers: ["relu2_1"], styleLayers: ["relu1_1", "relu2_1"] };
    // Small, so that SwiftShader runs the few tiles quickly: tiles of 16 px (a picture within one crop is evaluated whole).
    const c = await resizeImage(content, 64, 32);
    const s = await resizeImage(style, 40, 36);
    const x = toNetworkInput(await resizeImage(await loadImage(path.join(GOLDEN_DIR, "x.png")), 64, 32));
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
        ...(tile === undefined ? {} : { tile }),
      });
      try {
        if (tile !== undefined) assert.ok((o.tiling?.tiles ?? 0) >= 2, `${o.tiling?.tiles} tiles`);
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
        options: { contentLayers: ["relu2_1"], styleLayers: ["relu1_1", "relu2_1"] },
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
        styles: [await resizeImage(style, 40, 36)],
        temporal,
        options: { contentLayers: ["relu2_1"], styleLayers: ["relu1_1", "relu2_1"], temporalWeight: 20 },
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
      iterations: 3,
      weights,
      device: "webgpu",
      styleLayers: ["relu1_1", "relu2_1"],
      contentLayers: ["relu2_2"],
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
