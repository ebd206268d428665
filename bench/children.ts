/**
 * Measurement children of `npm run bench`, one process each so that every peak
 * RSS is that measurement's own:
 *   eval CONTENT STYLE N [PRECISION]  median of N evaluations of the objective (fp32 or int8)
 *   eval-tiled CONTENT STYLE N TILE   N evaluations in tiles of TILE px (no warm-up: the first
 *                                     tile warms the arena), with the set-up's seconds
 *   conv-peak                         best throughput of one large 3x3 Conv, float32 and int8
 *   stylize CONTENT STYLE N           N L-BFGS evaluations from the content image
 *   split CONTENT STYLE HISTORY N     the time split of N iterations after the history is full
 *   to-quality CONTENT STYLE TARGET SCALES ITERATIONS [fp32|mixed]
 *                                     seconds until the float32 loss at the last scale reaches TARGET
 */
import { Graph } from "../src/graph/graph.js";
import { toNetworkInput } from "../src/image/image.js";
import { loadImage } from "../src/image/io.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import { Objective, type Precision } from "../src/objective/objective.js";
import { quantizeKernel } from "../src/quantize/int8.js";
import { CompiledGraph } from "../src/runtime/session.js";
import { stylize } from "../src/stylize/stylize.js";
import { median, WEIGHTS } from "./common.js";

/** Where the measurements run: `npm run bench -- --device webgpu` sets it. */
const DEVICE = (process.env.STYLEGRAM_BENCH_DEVICE ?? "cpu") as "cpu" | "webgpu" | "auto";
const RUNTIME_DEVICE = DEVICE === "auto" ? await chooseAutoDevice() : DEVICE;

async function chooseAutoDevice() {
  const { chooseDevice } = await import("../src/runtime/choose-device.js");
  const { probeWebGpu } = await import("../src/runtime/probe.js");
  return (await chooseDevice("auto", probeWebGpu)).device;
}

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
const peakRssMiB = () => process.resourceUsage().maxRSS / 1024;

async function evaluation(content: string, style: string, evals: number, precision: Precision) {
  const weights = loadManifestWeights(WEIGHTS);
  const c = await loadImage(content);
  const objective = await Objective.create({
    weights,
    content: c,
    styles: [await loadImage(style)],
    runtime: { device: RUNTIME_DEVICE },
    precision,
  });
  const x = toNetworkInput(c);
  // Warm-up: the memory arena grows to its working size (int8: after its two float32 calibrations).
  for (let i = 0; i < (precision === "int8" ? 3 : 1); i++) await objective.evaluate(x);
  const times: number[] = [];
  for (let i = 0; i < evals; i++) {
    const t = performance.now();
    await objective.evaluate(x);
    times.push((performance.now() - t) / 1000);
  }
  print({ medianSeconds: median(times), peakRssMiB: peakRssMiB(), gflop: objective.flops / 1e9 });
}

async function tiledEvaluation(content: string, style: string, evals: number, tile: number) {
  const weights = loadManifestWeights(WEIGHTS);
  const c = await loadImage(content);
  const started = performance.now();
  const objective = await Objective.create({
    weights,
    content: c,
    styles: [await loadImage(style)],
    runtime: { device: RUNTIME_DEVICE },
    tile,
  });
  const setupSeconds = (performance.now() - started) / 1000;
  const x = toNetworkInput(c);
  const times: number[] = [];
  for (let i = 0; i < evals; i++) {
    const t = performance.now();
    await objective.evaluate(x);
    times.push((performance.now() - t) / 1000);
  }
  print({
    medianSeconds: median(times),
    setupSeconds,
    peakRssMiB: peakRssMiB(),
    tiles: objective.tiling?.tiles ?? 1,
    gflop: objective.flops / 1e9,
  });
}

/**
 * One 512 -> 512 channel 3x3 convolution at 64x64, the shape of VGG19's block 4, on every core:
 * float32 Conv, and QLinearConv with u8 activations and s8 weights (the int8 path's kernel).
 */
async function convPeak() {
  const flop = 2 * 512 * 512 * 9 * 64 * 64;
  const best = async (compiled: CompiledGraph, data: Float32Array) => {
    const times: number[] = [];
    for (let i = 0; i < 12; i++) {
      const t = performance.now();
      await compiled.run({ x: { data, dims: [1, 512, 64, 64] } });
      times.push((performance.now() - t) / 1000);
    }
    return flop / 1e9 / Math.min(...times.slice(2));
  };
  const data = Float32Array.from({ length: 512 * 64 * 64 }, (_, i) => Math.abs(Math.cos(i)));
  const kernel = Float32Array.from({ length: 512 * 512 * 9 }, (_, i) => Math.sin(i) * 0.01);
  const g = new Graph();
  const x = g.input("x", [1, 512, 64, 64]);
  g.output(
    g.op1("Conv", [x, g.constant(kernel, [512, 512, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    "y",
  );
  const fp32 = await best(await CompiledGraph.compile(g), data);
  const q = new Graph();
  const qx = q.input("x", [1, 512, 64, 64]);
  const zero = q.typed("uint8", Uint8Array.of(0), []);
  const { q: wq, scales } = quantizeKernel(kernel, 512);
  const xs = q.scalar(1 / 255);
  const codes = q.op1("QuantizeLinear", [qx, xs, zero]);
  const y = q.op1(
    "QLinearConv",
    [
      codes,
      xs,
      zero,
      q.typed("int8", wq, [512, 512, 3, 3]),
      q.constant(scales, [512]),
      q.typed("int8", new Int8Array(512), [512]),
      q.scalar(0.05),
      zero,
    ],
    { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
  );
  q.output(q.op1("ReduceMax", [y], { keepdims: 0 }), "y");
  const int8 = await best(await CompiledGraph.compile(q), data);
  print({ gflops: fp32, int8Gflops: int8 });
}

/**
 * Where an iteration's time goes at full history: a run of `history` + `extra` evaluations, and the
 * medians of the last `extra` iterations' split (objective, optimiser, the rest), in the default precision.
 */
async function timeSplit(content: string, style: string, history: number, extra: number) {
  const c = await loadImage(content);
  const split: { objective: number; optimizer: number; other: number }[] = [];
  let precision = "";
  await stylize({
    content: c,
    styles: [await loadImage(style)],
    size: Math.max(c.width, c.height),
    iterations: history + 1 + extra,
    historySize: history,
    weights: WEIGHTS,
    device: DEVICE,
    onProgress: (p) => {
      if (p.iteration > history + 1) split.push(p.timing);
      precision = p.precision;
    },
  });
  print({
    objective: median(split.map((t) => t.objective)),
    optimizer: median(split.map((t) => t.optimizer)),
    other: median(split.map((t) => t.other)),
    precision,
  });
}

async function stylizeRun(content: string, style: string, iterations: number) {
  const c = await loadImage(content);
  const losses: number[] = [];
  const t = performance.now();
  const r = await stylize({
    content: c,
    styles: [await loadImage(style)],
    size: Math.max(c.width, c.height),
    iterations,
    init: "content",
    weights: WEIGHTS,
    device: DEVICE,
    onProgress: (p) => void losses.push(p.total),
  });
  print({
    finalLoss: losses.at(-1),
    bestLoss: r.loss.total,
    seconds: (performance.now() - t) / 1000,
    evaluations: r.iterations,
    peakRssMiB: peakRssMiB(),
  });
}

/**
 * Seconds until a float32 loss at or below TARGET: `mixed` counts only its float32 evaluations (int8
 * values are not float32 losses). Stops there.
 */
async function toQuality(
  content: string,
  style: string,
  target: number,
  scales: number[],
  iterations: number[],
  precision: "fp32" | "mixed",
) {
  const c = await loadImage(content);
  const controller = new AbortController();
  let reached: { seconds: number; iteration: number; loss: number } | undefined;
  let last = { seconds: 0, iteration: 0, loss: Number.NaN };
  await stylize({
    content: c,
    styles: [await loadImage(style)],
    scales,
    iterations,
    init: "content",
    weights: WEIGHTS,
    device: DEVICE,
    precision,
    signal: controller.signal,
    onProgress: (p) => {
      last = { seconds: p.seconds, iteration: p.iteration, loss: p.total };
      if (p.scale === p.scales && p.precision === "fp32" && p.total <= target && !reached) {
        reached = last;
        controller.abort();
      }
    },
  });
  print({ reached: reached !== undefined, ...(reached ?? last), peakRssMiB: peakRssMiB() });
}

const [kind, ...a] = process.argv.slice(2);
const list = (s: string | undefined) => (s ?? "").split(",").map(Number);
switch (kind) {
  case "eval-tiled":
    await tiledEvaluation(a[0] as string, a[1] as string, Number(a[2]), Number(a[3]));
    break;
  case "eval":
    await evaluation(a[0] as string, a[1] as string, Number(a[2]), (a[3] ?? "fp32") as Precision);
    break;
  case "conv-peak":
    await convPeak();
    break;
  case "stylize":
    await stylizeRun(a[0] as string, a[1] as string, Number(a[2]));
    break;
  case "split":
    await timeSplit(a[0] as string, a[1] as string, Number(a[2]), Number(a[3]));
    break;
  case "to-quality":
    await toQuality(
      a[0] as string,
      a[1] as string,
      Number(a[2]),
      list(a[3]),
      list(a[4]),
      (a[5] ?? "fp32") as "fp32" | "mixed",
    );
    break;
  default:
    throw new Error(`unknown bench child ${kind}`);
}
