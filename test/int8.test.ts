import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import { UsageError } from "../src/errors.js";
import type { RgbImage } from "../src/image/image.js";
import { toNetworkInput } from "../src/image/image.js";
import { loadImage } from "../src/image/io.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { VggWeights } from "../src/network/weights.js";
import { objectiveGraph } from "../src/objective/graphs.js";
import { Objective } from "../src/objective/objective.js";
import { resolveObjective } from "../src/objective/options.js";
import { type QuantPoint, quantizeInt8, quantizeKernel } from "../src/quantize/int8.js";
import { DelayedScales } from "../src/quantize/scales.js";
import type { Progress } from "../src/stylize/options.js";
import { planEvaluation } from "../src/stylize/plan.js";
import { MIXED_FP32_SHARE, precisionPhases, stylize } from "../src/stylize/stylize.js";
import { runCli } from "./support/cli.js";
import { rng } from "./support/random.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const shared = needsShared();
const content = path.join(IMAGES_DIR, "tubingen.jpg");
const style = path.join(IMAGES_DIR, "starry_night.jpg");

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] as number) * (b[i] as number);
    aa += (a[i] as number) ** 2;
    bb += (b[i] as number) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

describe("int8 building blocks", () => {
  test("kernels are quantised per output channel, each value within half a step of its own channel's scale", () => {
    const r = rng(3);
    // Channel 1 is 100x larger than channel 0: a per-tensor scale would flatten channel 0 to zeros.
    const data = Float32Array.from({ length: 2 * 4 * 9 }, (_, i) => (r() - 0.5) * (i < 36 ? 0.01 : 1));
    const { q, scales } = quantizeKernel(data, 2);
    assert.ok((scales[1] as number) > 50 * (scales[0] as number));
    for (let i = 0; i < data.length; i++) {
      const s = scales[i < 36 ? 0 : 1] as number;
      assert.ok(Math.abs((q[i] as number) * s - (data[i] as number)) <= s / 2 + 1e-9, `value ${i}`);
      assert.ok(Math.abs(q[i] as number) <= 127);
    }
    assert.ok(
      q.slice(0, 36).some((v) => Math.abs(v) > 60),
      "the small channel uses its whole range",
    );
  });

  test("delayed scaling: the largest recent maximum sets the scale; a clipped output widens it; zeros keep it", () => {
    const points: QuantPoint[] = [
      { key: "a", kind: "activation", observed: "amax" },
      { key: "g", kind: "gradient", observed: "codes" },
    ];
    const s = new DelayedScales(points, { history: 2, headroom: 1 });
    const out = (v: Record<string, number>) =>
      Object.fromEntries(Object.entries(v).map(([k, x]) => [k, { data: Float32Array.of(x) }]));
    assert.equal(s.ready, false);
    s.observe(out({ amax__a: 255, codemax__g: 128 + 100, codemin__g: 128 - 50 }));
    assert.equal(s.ready, true);
    const scale = (k: string) => s.feeds()[`qscale__${k}`]?.data[0] as number;
    assert.equal(scale("a"), 1);
    // The gradient's codes were read with scale 1 (its default before any scale): 100 levels.
    assert.ok(Math.abs(scale("g") - 100 / 127) < 1e-6);
    s.observe(out({ amax__a: 51, codemax__g: 128, codemin__g: 128 }));
    assert.equal(scale("a"), 1, "the larger of the last two maxima");
    assert.ok(Math.abs(scale("g") - 100 / 127) < 1e-6, "an all-zero gradient keeps its scale");
    s.observe(out({ amax__a: 51, codemax__g: 255, codemin__g: 128 }));
    assert.ok(Math.abs(scale("a") - 0.2) < 1e-6, "the old maximum left the history");
    assert.deepEqual(s.saturated, ["g"]);
    assert.ok(scale("g") > 1.9 * (100 / 127), `a clipped output widens its range: ${scale("g")}`);
  });

  test("mixed runs int8, then float32 for the last tenth; too short a run stays float32", () => {
    assert.deepEqual(precisionPhases("mixed", 300), [
      { precision: "int8", evaluations: 300 - Math.round(300 * MIXED_FP32_SHARE) },
      { precision: "fp32", evaluations: Math.round(300 * MIXED_FP32_SHARE) },
    ]);
    assert.deepEqual(precisionPhases("mixed", 2), [{ precision: "fp32", evaluations: 2 }]);
    assert.deepEqual(precisionPhases("int8", 7), [{ precision: "int8", evaluations: 7 }]);
  });
});

test("int8's memory is checked before any work: a limit that float32 fits in stops int8 and names the fix", async () => {
  const image = (width: number, height: number): RgbImage => ({
    width,
    height,
    data: new Uint8Array(width * height * 3),
  });
  const check = (int8: boolean, maxMemory: number) =>
    planEvaluation({
      content: image(400, 400),
      styles: [image(400, 400)],
      sizes: [1024],
      styleScale: 1,
      objective: resolveObjective({}, 1),
      optimizer: "lbfgs",
      historySize: 10,
      maxMemory,
      precision: int8 ? "int8" : "fp32",
    });
  const fp32 = (await check(false, 64 * 2 ** 30)).scales[0]?.peakBytes as number;
  const int8 = (await check(true, 64 * 2 ** 30)).scales[0]?.peakBytes as number;
  assert.ok(int8 > 1.5 * fp32, `${int8} vs ${fp32}`);
  const between = (fp32 + int8) / 2;
  assert.equal((await check(false, between)).scales[0]?.tile, undefined, "float32 fits whole");
  // int8 does not fit whole there: it runs in tiles, within the limit.
  const tiled = (await check(true, between)).scales[0];
  assert.ok(tiled?.tile !== undefined && tiled.peakBytes <= between, `tile ${tiled?.tile}`);
  // Where even int8's tiles do not fit, the error names float32 as the fix.
  await assert.rejects(check(true, 1.2e9), (e: Error) => /precision: "fp32" needs less/.test(e.message));
});

describe("int8 objective (real weights)", shared, () => {
  let weights: VggWeights;
  before(() => {
    weights = loadManifestWeights(WEIGHTS_DIR);
  });

  test("every convolution but the first layer's becomes a QLinearConv, forward and backward", async () => {
    const c = await loadImage(content, { longEdge: 64 });
    const s = await loadImage(style, { longEdge: 64 });
    // The float graph that Objective.create builds for this picture, rewritten.
    const g = objectiveGraph(
      { weights, o: resolveObjective({}, 1), poolIndices: true },
      { kind: "whole", width: c.width, height: c.height },
      { regions: false },
    );
    assert.ok(s.width > 0);
    const { graph, points } = quantizeInt8(g);
    const count = (op: string) => graph.nodes.filter((n) => n.op === op).length;
    // relu5_1 is the deepest layer: conv1_2 .. conv5_1 is 12 convolutions, each forward and backward.
    assert.equal(count("QLinearConv"), 24);
    assert.equal(count("Conv"), 2, "conv1_1 forward and backward stay float32");
    assert.equal(count("Relu"), 1, "the other ReLUs are the u8 outputs' clamp");
    // Every forward convolution writes its own scale; the gradient's input scales are mostly reused.
    assert.equal(points.filter((p) => p.kind === "activation").length, 13);
    assert.ok(points.filter((p) => p.kind === "gradient").length < 24);
    assert.ok(
      graph.nodes.some((n) => n.op === "MaxPool" && graph.get(n.inputs[0] as string).dtype === "uint8"),
    );
  });

  test("an int8 evaluation is close to float32's: every term within 2%, the gradient's direction with cosine > 0.9", async () => {
    const c = await loadImage(content, { longEdge: 96 });
    const s = await loadImage(style, { longEdge: 96 });
    const objective = await Objective.create({ weights, content: c, styles: [s], precision: "int8" });
    try {
      const x = toNetworkInput(c);
      const r = rng(5);
      for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) + (r() - 0.5) * 40;
      // The first two evaluations calibrate in float32 and are exact.
      const exact = await objective.evaluate(x);
      const again = await objective.evaluate(x);
      assert.equal(again.total, exact.total);
      let int8 = await objective.evaluate(x);
      int8 = await objective.evaluate(x);
      assert.notEqual(int8.total, exact.total, "the third evaluation is int8");
      const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
      assert.ok(rel(int8.total, exact.total) < 0.02, `total ${int8.total} vs ${exact.total}`);
      for (const [l, v] of Object.entries(exact.style)) {
        assert.ok(rel(int8.style[l] as number, v) < 0.02, `style ${l}: ${int8.style[l]} vs ${v}`);
      }
      assert.ok(rel(int8.content.relu4_2 as number, exact.content.relu4_2 as number) < 0.05);
      assert.equal(int8.tv, exact.tv, "the smoothness term reads the pixels, not the network");
      const cos = cosine(int8.gradient, exact.gradient);
      assert.ok(cos > 0.9, `gradient cosine ${cos}`);
      // Back to float32: exact again, the same session kinds as before.
      await objective.usePrecision("fp32");
      assert.equal((await objective.evaluate(x)).total, exact.total);
    } finally {
      await objective.release();
    }
  });

  test("int8 on WebGPU is refused before any work, with the fix", async () => {
    const c = await loadImage(content, { longEdge: 32 });
    await assert.rejects(
      Objective.create({
        weights,
        content: c,
        styles: [c],
        precision: "int8",
        runtime: { device: "webgpu" },
      }),
      (e: Error) => e instanceof UsageError && /CPU only/.test(e.message) && /device: "cpu"/.test(e.message),
    );
  });

  test("mixed: int8 evaluations, then float32 ones; the result's loss is a float32 one and the loss falls", async () => {
    const seen: Progress[] = [];
    const r = await stylize({
      content,
      styles: [style],
      size: 64,
      weights,
      iterations: 30,
      precision: "mixed",
      onProgress: (p) => void seen.push(p),
    });
    const kinds = seen.map((p) => p.precision);
    assert.equal(seen.length, 30);
    assert.deepEqual(kinds.slice(0, 27), new Array(27).fill("int8"));
    assert.deepEqual(kinds.slice(27), ["fp32", "fp32", "fp32"]);
    const fp32Totals = seen.slice(27).map((p) => p.total);
    assert.equal(r.loss.total, Math.min(...fp32Totals));
    assert.ok(r.loss.total < (seen[0]?.total as number) / 3, `${seen[0]?.total} -> ${r.loss.total}`);
  });

  test("CLI: --precision int8 says so and paints; a bad value names the choices", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-int8-"));
    try {
      const out = path.join(dir, "out.png");
      const env = { STYLEGRAM_WEIGHTS: WEIGHTS_DIR };
      const ok = runCli(
        [content, style, "--size", "48", "--iterations", "6", "--precision", "int8", "-o", out],
        env,
      );
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stderr, /int8 convolutions \(--precision int8\)/);
      assert.match(ok.stderr, /iteration 6\/6 {2}int8/);
      assert.ok(fs.statSync(out).size > 1000);
      const bad = runCli([content, style, "--precision", "int4", "-o", path.join(dir, "x.png")], env);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--precision/);
      assert.match(bad.stderr, /--precision must be one of "fp32", "int8", "mixed", got "int4"/);
      assert.ok(!fs.existsSync(path.join(dir, "x.png")));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
