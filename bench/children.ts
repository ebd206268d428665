/**
 * Measurement children of `npm run bench`, one process each so that every peak
 * RSS is that measurement's own:
 *   eval CONTENT STYLE N              median of N evaluations of the objective
 *   conv-peak                         best throughput of one large 3x3 Conv in onnxruntime
 *   stylize CONTENT STYLE N           N L-BFGS evaluations from the content image
 *   to-quality CONTENT STYLE TARGET SCALES ITERATIONS
 *                                     seconds until the loss at the last scale reaches TARGET
 */
import { Graph } from "../src/graph/graph.js";
import { toNetworkInput } from "../src/image/image.js";
import { loadImage } from "../src/image/io.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import { Objective } from "../src/objective/objective.js";
import { CompiledGraph } from "../src/runtime/session.js";
import { stylize } from "../src/stylize/stylize.js";
import { median, WEIGHTS } from "./common.js";

/** Where the measurements run: `npm run bench -- --device webgpu` sets it. */
const DEVICE = (process.env.STYLEGRAM_BENCH_DEVICE ?? "cpu") as "cpu" | "webgpu" | "auto";
const RUNTIME_DEVICE = DEVICE === "auto" ? await chooseAutoDevice() : DEVICE;

async function chooseAutoDevice() {
  const { chooseDevice } = await import("../src/runtime/device.js");
  const { probeWebGpu } = await import("../src/runtime/session.js");
  return (await chooseDevice("auto", probeWebGpu)).device;
}

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
const peakRssMiB = () => process.resourceUsage().maxRSS / 1024;

async function evaluation(content: string, style: string, evals: number) {
  const weights = loadManifestWeights(WEIGHTS);
  const c = await loadImage(content);
  const objective = await Objective.create({
    weights,
    content: c,
    styles: [await loadImage(style)],
    runtime: { device: RUNTIME_DEVICE },
  });
  const x = toNetworkInput(c);
  await objective.evaluate(x); // warm-up: the memory arena grows to its working size
  const times: number[] = [];
  for (let i = 0; i < evals; i++) {
    const t = performance.now();
    await objective.evaluate(x);
    times.push((performance.now() - t) / 1000);
  }
  print({ medianSeconds: median(times), peakRssMiB: peakRssMiB(), gflop: objective.flops / 1e9 });
}

/** One 512 -> 512 channel 3x3 Conv at 64x64, the shape of VGG19's block 4, on every core. */
async function convPeak() {
  const g = new Graph();
  const x = g.input("x", [1, 512, 64, 64]);
  const w = g.constant(
    Float32Array.from({ length: 512 * 512 * 9 }, (_, i) => Math.sin(i) * 0.01),
    [512, 512, 3, 3],
  );
  g.output(g.op1("Conv", [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), "y");
  const compiled = await CompiledGraph.compile(g);
  const data = Float32Array.from({ length: 512 * 64 * 64 }, (_, i) => Math.cos(i));
  const times: number[] = [];
  for (let i = 0; i < 12; i++) {
    const t = performance.now();
    await compiled.run({ x: { data, dims: [1, 512, 64, 64] } });
    times.push((performance.now() - t) / 1000);
  }
  const flop = 2 * 512 * 512 * 9 * 64 * 64;
  print({
    gflops: flop / 1e9 / Math.min(...times.slice(2)),
    medianGflops: flop / 1e9 / median(times.slice(2)),
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

async function toQuality(
  content: string,
  style: string,
  target: number,
  scales: number[],
  iterations: number[],
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
    signal: controller.signal,
    onProgress: (p) => {
      last = { seconds: p.seconds, iteration: p.iteration, loss: p.total };
      if (p.scale === p.scales && p.total <= target && !reached) {
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
  case "eval":
    await evaluation(a[0] as string, a[1] as string, Number(a[2]));
    break;
  case "conv-peak":
    await convPeak();
    break;
  case "stylize":
    await stylizeRun(a[0] as string, a[1] as string, Number(a[2]));
    break;
  case "to-quality":
    await toQuality(a[0] as string, a[1] as string, Number(a[2]), list(a[3]), list(a[4]));
    break;
  default:
    throw new Error(`unknown bench child ${kind}`);
}
