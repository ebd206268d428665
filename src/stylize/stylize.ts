import { type ImageSource, resolveImage, resolveWeights } from "../api/inputs.js";
import { DivergedError, StoppedBeforeStartError, StoppedError, UsageError } from "../errors.js";
import { keepOriginalColors, matchColorHistogram } from "../image/colors.js";
import { fromNetworkInput, type RgbImage, toNetworkInput } from "../image/image.js";
import { hasTransparency, loadImage, resizeImage } from "../image/io.js";
import { resizeMask } from "../image/masks.js";
import { readsHdf5 } from "../network/load.js";
import { type LossTerms, Objective } from "../objective/objective.js";
import { resolveObjective } from "../objective/options.js";
import { checkTileEdge, cropSize, haloFor, planTiles } from "../objective/tiling.js";
import { adam } from "../optim/adam.js";
import { lbfgs } from "../optim/lbfgs.js";
import type { Differentiable, EvaluationInfo, MinimizeResult, StopReason } from "../optim/types.js";
import { isFiniteVector } from "../optim/vector.js";
import type { Device } from "../runtime/device.js";
import { chooseDevice } from "../runtime/device.js";
import { probeWebGpu } from "../runtime/session.js";
import { prepareMasks } from "./masks.js";
import { gaussianNoise } from "./noise.js";
import {
  type Colors,
  type Init,
  type PrecisionRequest,
  positiveInteger,
  positiveNumber,
  STYLIZE_DEFAULTS,
  type StylizeOptions,
  validateStylizeOptions,
} from "./options.js";
import { type AdviceLimits, preflight } from "./preflight.js";

export interface StylizeResult {
  image: RgbImage;
  /** The terms at the returned image (the best evaluated). */
  loss: LossTerms;
  iterations: number;
  seconds: number;
  /** "aborted" when the signal stopped it early. */
  reason: StopReason;
}

/** Noise of this standard deviation (pixel units) around the mean image, as the reference implementations use. */
const NOISE_STD = 0.001 * 255;

/** The starting point of the optimisation, in the network's input space, at the content's size. */
async function initialImage(
  init: Init,
  content: RgbImage,
  firstStyle: ImageSource,
  seed: number,
): Promise<Float32Array> {
  const { width, height } = content;
  if (init === "content") return toNetworkInput(content);
  if (init === "noise") return gaussianNoise(3 * width * height, seed, NOISE_STD);
  const src = init === "style" ? firstStyle : init.image;
  // A file or the style image is resized to the output; an image passed in memory must already fit.
  if (typeof src === "string") return toNetworkInput(await loadImage(src, { exact: { width, height } }));
  if (init === "style") {
    return toNetworkInput(await resizeImage(src, width, height));
  }
  if (src.width !== width || src.height !== height) {
    throw new UsageError(
      `the init image is ${src.width}x${src.height}; it must have the output size ${width}x${height}`,
    );
  }
  return toNetworkInput(src);
}

/** A note for each input file with transparent pixels: they are painted onto white, which changes the picture. */
async function transparencyNotices(options: StylizeOptions): Promise<string[]> {
  const files: [string, ImageSource][] = [
    ["the content image", options.content],
    ...options.styles.map((s, i): [string, ImageSource] => [
      options.styles.length > 1 ? `style image ${i + 1}` : "the style image",
      s,
    ]),
  ];
  const notices: string[] = [];
  for (const [what, src] of files) {
    if (typeof src === "string" && (await hasTransparency(src)))
      notices.push(`${what} (${src}) has transparent pixels: they are painted onto white before stylizing`);
  }
  return notices;
}

/**
 * The checks stylize() makes before any work, without the work: every option,
 * the scales, each image's size against the network (from its header) and the
 * memory the run needs. Throws the error stylize() would; a server calls it to
 * refuse a request at once rather than fail a job later, with its own caps as
 * `limits` so that the advice in an error names only values it accepts.
 */
export async function checkStylize(options: StylizeOptions, limits?: AdviceLimits) {
  validateStylizeOptions(options);
  const plan = planScales(options);
  const styleScale = positiveNumber("styleScale", options.styleScale, STYLIZE_DEFAULTS.styleScale);
  const optimizer = options.optimizer ?? STYLIZE_DEFAULTS.optimizer;
  // The masks are decoded here (they are small): an empty one is refused before any work.
  const masks = await prepareMasks(options, (plan.at(-1) as ScalePlan).size);
  const regions = masks.masks !== undefined || masks.styleMasks?.some((m) => m !== undefined);
  // Sizes and memory are checked from the images' headers, before the weights are read.
  const checked = await preflight({
    content: options.content,
    styles: options.styles,
    sizes: plan.map((p) => p.size),
    styleScale,
    objective: resolveObjective(options, options.styles.length),
    optimizer,
    historySize: options.historySize,
    maxMemory: options.maxMemory,
    hdf5Weights:
      typeof options.weights !== "object" && readsHdf5(options.weights ?? process.env.STYLEGRAM_WEIGHTS),
    // A GPU run is always float32; whether the device is a GPU is known only later, so count int8 here.
    int8: (options.precision ?? STYLIZE_DEFAULTS.precision) !== "fp32" && options.device !== "webgpu",
    iterations: plan.map((p) => p.iterations),
    ...(options.tile === undefined ? {} : { tile: checkTileEdge(options.tile) }),
    regions: regions ? options.styles.length : 0,
    ...(limits ? { limits } : {}),
  });
  const colors: Colors = options.colors ?? (options.originalColors ? "luminance" : "style");
  const notices = [...(await transparencyNotices(options)), ...masks.notices];
  return { plan, styleScale, optimizer, checked, masks, colors, notices };
}

/**
 * Repaints the content image in the style of the style image(s): builds the
 * objective once for the output size, then minimises it over the pixels.
 */
export async function stylize(options: StylizeOptions): Promise<StylizeResult> {
  const { plan, styleScale, optimizer, checked, masks, colors, notices } = await checkStylize(options);
  for (const message of notices) options.onStage?.({ stage: "notice", message });
  const seed = options.seed ?? STYLIZE_DEFAULTS.seed;
  const snapshotEvery =
    options.snapshotEvery === undefined
      ? undefined
      : positiveInteger("snapshotEvery", options.snapshotEvery, 1);
  const stopped = () => options.signal?.aborted === true;
  if (stopped()) throw new StoppedBeforeStartError();
  const choice = await chooseDevice(options.device ?? "auto", probeWebGpu);
  const precision = choosePrecision(options.precision, choice.device);
  options.onStage?.({ stage: "device", device: choice.device, reason: choice.reason, precision });
  const runtime = {
    device: choice.device,
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  };
  options.onStage?.({ stage: "weights" });
  const weights = await resolveWeights(options.weights);
  const totalIterations = plan.reduce((n, p) => n + p.iterations, 0);

  // What an evaluation of each scale costs, relative to the others, for the time left.
  const costs = checked.scales.map((c) => evaluationCost(c.width, c.height, c.tile, options));
  const remainingCost = (k: number, doneInScale: number) =>
    plan.reduce(
      (sum, p, j) =>
        j < k ? sum : sum + (costs[j] as number) * (j === k ? p.iterations - doneInScale : p.iterations),
      0,
    );
  const started = performance.now();
  let done = 0;
  let x: Float32Array | undefined;
  let last: { result: MinimizeResult; terms: LossTerms; content: RgbImage } | undefined;
  for (const [k, scale] of plan.entries()) {
    if (stopped()) break;
    const check = checked.scales[k] as (typeof checked.scales)[number];
    options.onStage?.({
      stage: "objective",
      scale: k + 1,
      scales: plan.length,
      width: check.width,
      height: check.height,
      estimatedBytes: check.peakBytes,
      availableBytes: checked.available,
      ...(check.tile === undefined ? {} : { tile: check.tile }),
    });
    const content = await resolveImage(options.content, { longEdge: scale.size });
    const styleSize = Math.max(1, Math.round(scale.size * styleScale));
    const loaded = await Promise.all(options.styles.map((st) => resolveImage(st, { longEdge: styleSize })));
    // Each scale resizes the masks from their own size, as it does the images.
    const contentMasks = masks.masks?.map((m) => resizeMask(m, content.width, content.height));
    const styleMasks = masks.styleMasks?.map((m, i) => {
      const st = loaded[i] as RgbImage;
      return m && resizeMask(m, st.width, st.height);
    });
    // Colour histogram matching: each painting recoloured to the photo's colours (region by region).
    const styles =
      colors === "histogram"
        ? loaded.map((st, i) =>
            matchColorHistogram(st, content, {
              ...(styleMasks?.[i] ? { style: styleMasks[i].data } : {}),
              ...(contentMasks?.[i] ? { content: contentMasks[i].data } : {}),
            }),
          )
        : loaded;
    // The first scale starts as asked; each later one from the previous result, upsampled.
    const x0 =
      x === undefined || last === undefined
        ? await initialImage(
            options.init ?? STYLIZE_DEFAULTS.init,
            content,
            colors === "histogram" ? (styles[0] as RgbImage) : (options.styles[0] as ImageSource),
            seed,
          )
        : toNetworkInput(
            await resizeImage(
              fromNetworkInput(x, last.content.width, last.content.height),
              content.width,
              content.height,
            ),
          );
    const phases = precisionPhases(precision, scale.iterations);
    const finish = (v: Float32Array): RgbImage => {
      const img = fromNetworkInput(v, content.width, content.height);
      return colors === "luminance" ? keepOriginalColors(img, content) : img;
    };
    let objective: Objective;
    try {
      objective = await Objective.create({
        weights,
        content,
        styles,
        options,
        runtime,
        precision: phases[0]?.precision ?? "fp32",
        ...(check.tile === undefined ? {} : { tile: check.tile }),
        ...(contentMasks ? { masks: contentMasks } : {}),
        ...(styleMasks ? { styleMasks } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (e) {
      // Stopped while setting up: the first scale has nothing to return, a later one the previous result.
      if (!(e instanceof StoppedError)) throw e;
      if (last === undefined) throw new StoppedBeforeStartError();
      break;
    }
    try {
      // A stop during the set-up of the first scale leaves nothing to return.
      if (stopped() && last === undefined) throw new StoppedBeforeStartError();
      if (stopped()) break;
      const scaleStarted = performance.now();
      const outcome = await optimizeOnce(
        objective,
        x0,
        optimizer,
        precisionPhases(precision, scale.iterations),
        { ...options, historySize: check.historySize },
        async (info, t) => {
          const iteration = done + info.evaluation;
          await options.onProgress?.({
            iteration,
            iterations: totalIterations,
            loss: t.total,
            total: t.total,
            content: t.content,
            style: t.style,
            tv: t.tv,
            seconds: (performance.now() - started) / 1000,
            scale: k + 1,
            scales: plan.length,
            width: content.width,
            height: content.height,
            device: choice.device,
            precision: objective.precision,
            etaSeconds:
              ((performance.now() - scaleStarted) / 1000 / (info.evaluation * (costs[k] as number))) *
              remainingCost(k, info.evaluation),
          });
          if (snapshotEvery !== undefined && options.onSnapshot && iteration % snapshotEvery === 0) {
            await options.onSnapshot(finish(info.best), iteration);
          }
        },
      );
      done += outcome.result.evaluations;
      x = outcome.result.x;
      last = { ...outcome, content };
      if (outcome.result.reason === "aborted") break;
    } finally {
      await objective.release();
    }
  }
  if (!last) throw new StoppedBeforeStartError();
  const img = fromNetworkInput(last.result.x, last.content.width, last.content.height);
  return {
    image: colors === "luminance" ? keepOriginalColors(img, last.content) : img,
    loss: last.terms,
    iterations: done,
    seconds: (performance.now() - started) / 1000,
    reason: last.result.reason,
  };
}

/**
 * The relative cost of one evaluation: its pixels, and tiled, the pixels of every crop, each crop
 * evaluated forward twice and backward once (about 1.5 untiled evaluations of its pixels).
 */
function evaluationCost(width: number, height: number, tile: number | undefined, o: StylizeOptions): number {
  if (tile === undefined) return width * height;
  const r = resolveObjective(o, o.styles.length);
  const halo = haloFor([...r.contentLayers, ...r.styleLayers]);
  const plan = planTiles(width, height, cropSize(tile, halo, width, height), halo);
  return 1.5 * plan.tiles.length * plan.cropWidth * plan.cropHeight;
}

interface ScalePlan {
  size: number;
  iterations: number;
}

/**
 * Above this long edge a run goes coarse to fine by default. At 2048 px and more, a VGG19 style layer
 * sees only small details of the picture, so a single-scale run copies the painting's texture but
 * not its large structures (the swirls of a sky); those are made at a small size and kept as the
 * picture is upsampled and refined (Gatys et al., "Controlling Perceptual Factors", section 5).
 */
export const COARSE_TO_FINE_ABOVE = 1024;
/** The coarsest scale of the automatic recipe: where the default settings were tuned. */
export const COARSEST_SCALE = 512;
/**
 * Each finer scale of the automatic recipe runs this many times fewer evaluations than the one before
 * (at least MIN_TOP_ITERATIONS): it refines details, and each of its evaluations costs 4x.
 */
export const ITERATIONS_DECAY = 5;
export const MIN_TOP_ITERATIONS = 5;

/** The automatic coarse-to-fine sizes for a long edge: halvings down to COARSEST_SCALE, then doublings back. */
export function autoScales(size: number): number[] {
  const sizes = [size];
  while (Math.round((sizes[0] as number) / 2) >= COARSEST_SCALE)
    sizes.unshift(Math.round((sizes[0] as number) / 2));
  return sizes;
}

/**
 * The sizes optimised in turn, coarse to fine, and the evaluations at each. Without `scales` it is the
 * one output size, or above COARSE_TO_FINE_ABOVE the automatic recipe (autoScales, with the
 * iterations decaying per scale); with it, every size must grow and the last is the output.
 */
export function planScales(options: Pick<StylizeOptions, "size" | "scales" | "iterations">): ScalePlan[] {
  const size = positiveInteger("size", options.size, STYLIZE_DEFAULTS.size);
  const auto = (options.scales === undefined || options.scales.length === 0) && size > COARSE_TO_FINE_ABOVE;
  const sizes =
    options.scales === undefined || options.scales.length === 0
      ? auto
        ? autoScales(size)
        : [size]
      : [...options.scales];
  sizes.forEach((s) => {
    positiveInteger("scale size", s, 1);
  });
  if (sizes.some((s, i) => i > 0 && s <= (sizes[i - 1] as number))) {
    throw new UsageError(`scales must grow from coarse to fine, got ${sizes.join(",")}`);
  }
  if (options.scales !== undefined && options.size !== undefined && sizes.at(-1) !== size) {
    throw new UsageError(`the last scale (${sizes.at(-1)}) must be the output size (${size})`);
  }
  const its = options.iterations ?? STYLIZE_DEFAULTS.iterations;
  const list = Array.isArray(its)
    ? its
    : auto
      ? sizes.map((_, k) => Math.max(MIN_TOP_ITERATIONS, Math.round((its as number) / ITERATIONS_DECAY ** k)))
      : sizes.map(() => its as number);
  if (list.length !== sizes.length) {
    throw new UsageError(
      auto
        ? `${list.length} iteration counts given, but --size ${size} runs coarse to fine at ${sizes.join(",")} by default: ` +
            `give ${sizes.length} counts, or choose the scales (--scales; --scales ${size} for one scale)`
        : `${list.length} iteration counts given for ${sizes.length} scales`,
    );
  }
  return sizes.map((s, i) => ({ size: s, iterations: positiveInteger("iterations", list[i], 1) }));
}

/**
 * The share of each scale's evaluations that `mixed` runs in float32, at the end. The int8 phase does
 * the bulk of the descent; the float32 phase removes int8's bias, so the picture is float32's optimum.
 */
export const MIXED_FP32_SHARE = 0.1;

interface Phase {
  precision: "fp32" | "int8";
  evaluations: number;
}

/** The arithmetic a run uses: int8 needs the CPU, so on a GPU only an explicit request is an error. */
function choosePrecision(requested: PrecisionRequest | undefined, device: Device): PrecisionRequest {
  if (device === "webgpu") {
    if (requested !== undefined && requested !== "fp32") {
      throw new UsageError(
        `--precision ${requested} runs on the CPU only (WebGPU has no int8 convolution): add --device cpu, or use --precision fp32 on the GPU`,
      );
    }
    return "fp32";
  }
  return requested ?? STYLIZE_DEFAULTS.precision;
}

/** The phases of one scale's optimisation: one for fp32 and int8; int8 then float32 for mixed. */
export function precisionPhases(precision: PrecisionRequest, evaluations: number): Phase[] {
  if (precision !== "mixed") return [{ precision, evaluations }];
  const last = Math.max(1, Math.round(evaluations * MIXED_FP32_SHARE));
  // Too few evaluations to be worth a calibration and a switch: float32 throughout.
  if (evaluations - last < 2) return [{ precision: "fp32", evaluations }];
  return [
    { precision: "int8", evaluations: evaluations - last },
    { precision: "fp32", evaluations: last },
  ];
}

/**
 * One optimisation over one objective, with the divergence checks. With several phases the
 * arithmetic changes at each boundary inside one optimiser run: its history stays (measured: a
 * restarted L-BFGS lost more than int8's noise costs), but the best point is judged by the last
 * phase's values alone, since int8's and float32's values of one point differ a little.
 */
async function optimizeOnce(
  objective: Objective,
  x0: Float32Array,
  optimizer: "lbfgs" | "adam",
  phases: readonly Phase[],
  options: StylizeOptions,
  report: (info: EvaluationInfo, terms: LossTerms) => Promise<void>,
): Promise<{ result: MinimizeResult; terms: LossTerms }> {
  let latest: LossTerms | undefined;
  let bestTerms: LossTerms | undefined;
  let bestValue = Number.POSITIVE_INFINITY;
  let bestX: Float32Array | undefined;
  // The best of every evaluation, whatever its arithmetic: what a stop before the last phase returns.
  let anyBest: { value: number; terms: LossTerms } | undefined;
  let evaluation = 0;
  const switches = new Map<number, Phase["precision"]>();
  let boundary = 0;
  for (const p of phases) {
    switches.set(boundary, p.precision);
    boundary += p.evaluations;
  }
  const lastPhaseStart = boundary - (phases.at(-1)?.evaluations ?? boundary);
  const f: Differentiable = async (x) => {
    const precision = switches.get(evaluation);
    if (precision !== undefined) await objective.usePrecision(precision);
    const e = await objective.evaluate(x);
    evaluation++;
    latest = { total: e.total, content: e.content, style: e.style, tv: e.tv };
    if (!anyBest || e.total < anyBest.value) anyBest = { value: e.total, terms: latest };
    if (evaluation > lastPhaseStart && e.total < bestValue) {
      bestValue = e.total;
      bestTerms = latest;
      if (phases.length > 1) bestX = Float32Array.from(x);
    }
    // A NaN anywhere in the gradient poisons every later step: treat it as a NaN loss.
    return { value: isFiniteVector(e.gradient) ? e.total : Number.NaN, gradient: e.gradient };
  };
  const common = {
    maxEvaluations: boundary,
    onEvaluation: (info: EvaluationInfo) => report(info, latest as LossTerms),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  let result =
    optimizer === "adam"
      ? await adam(f, x0, {
          ...common,
          learningRate: options.learningRate ?? STYLIZE_DEFAULTS.adamLearningRate,
        })
      : await lbfgs(f, x0, {
          ...common,
          learningRate: options.learningRate ?? STYLIZE_DEFAULTS.lbfgsLearningRate,
          historySize: options.historySize ?? STYLIZE_DEFAULTS.historySize,
          lineSearch: options.lineSearch ?? STYLIZE_DEFAULTS.lineSearch,
        });
  if (bestX) result = { ...result, x: bestX, value: bestValue };
  if (result.reason === "diverged" || !bestTerms) {
    // Stopped before the last phase evaluated anything: the optimiser's own best stands.
    if (result.reason === "aborted" && anyBest) return { result, terms: anyBest.terms };
    throw new DivergedError(
      `the optimisation diverged at iteration ${evaluation} (loss ${latest?.total ?? "NaN"}); nothing was saved. ` +
        "Try smaller weights, a smaller learning rate or the L-BFGS line search (--line-search strong-wolfe).",
    );
  }
  return { result, terms: bestTerms };
}
