import { type ImageSource, resolveImage, resolveWeights } from "../api/inputs.js";
import { StylegramError, UsageError } from "../errors.js";
import { keepOriginalColors } from "../image/colors.js";
import { fromNetworkInput, type RgbImage, toNetworkInput } from "../image/image.js";
import { loadImage, resizeImage } from "../image/io.js";
import { type LossTerms, Objective } from "../objective/objective.js";
import { adam } from "../optim/adam.js";
import { lbfgs } from "../optim/lbfgs.js";
import type { Differentiable, StopReason } from "../optim/types.js";
import { isFiniteVector } from "../optim/vector.js";
import { gaussianNoise } from "./noise.js";
import {
  type Init,
  positiveInteger,
  positiveNumber,
  STYLIZE_DEFAULTS,
  type StylizeOptions,
} from "./options.js";

export interface StylizeResult {
  image: RgbImage;
  /** The terms at the returned image (the best evaluated). */
  loss: LossTerms;
  iterations: number;
  seconds: number;
  /** "aborted" when the signal stopped it early. */
  reason: StopReason;
}

/** The optimisation left the realm of numbers; nothing it produced is worth saving. */
export class DivergedError extends StylegramError {}

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

/**
 * Repaints the content image in the style of the style image(s): builds the
 * objective once for the output size, then minimises it over the pixels.
 */
export async function stylize(options: StylizeOptions): Promise<StylizeResult> {
  const size = positiveInteger("size", options.size, STYLIZE_DEFAULTS.size);
  const styleScale = positiveNumber("style scale", options.styleScale, STYLIZE_DEFAULTS.styleScale);
  const iterations = positiveInteger("iterations", options.iterations, STYLIZE_DEFAULTS.iterations);
  const seed = options.seed ?? STYLIZE_DEFAULTS.seed;
  if (!Number.isInteger(seed)) throw new UsageError(`seed must be a whole number, got ${seed}`);
  const snapshotEvery =
    options.snapshotEvery === undefined
      ? undefined
      : positiveInteger("snapshot interval", options.snapshotEvery, 1);
  if (options.styles.length === 0) throw new UsageError("at least one style image is needed");
  const optimizer = options.optimizer ?? STYLIZE_DEFAULTS.optimizer;
  if (optimizer !== "lbfgs" && optimizer !== "adam")
    throw new UsageError(`optimizer must be lbfgs or adam, got ${optimizer}`);
  const styleSize = Math.max(1, Math.round(size * styleScale));

  const weights = await resolveWeights(options.weights);
  const content = await resolveImage(options.content, { longEdge: size });
  const styles = await Promise.all(options.styles.map((s) => resolveImage(s, { longEdge: styleSize })));
  const x0 = await initialImage(
    options.init ?? STYLIZE_DEFAULTS.init,
    content,
    options.styles[0] as ImageSource,
    seed,
  );

  const objective = await Objective.create({
    weights,
    content,
    styles,
    options,
    ...(options.threads === undefined ? {} : { runtime: { threads: options.threads } }),
  });
  try {
    const started = performance.now();
    let latest: LossTerms | undefined;
    let bestTerms: LossTerms | undefined;
    let bestValue = Number.POSITIVE_INFINITY;
    let evaluation = 0;
    const f: Differentiable = async (x) => {
      const e = await objective.evaluate(x);
      evaluation++;
      latest = { total: e.total, content: e.content, style: e.style, tv: e.tv };
      if (e.total < bestValue) {
        bestValue = e.total;
        bestTerms = latest;
      }
      // A NaN anywhere in the gradient poisons every later step: treat it as a NaN loss.
      return { value: isFiniteVector(e.gradient) ? e.total : Number.NaN, gradient: e.gradient };
    };
    const report = async (info: { evaluation: number; best: Float32Array }) => {
      const t = latest as LossTerms;
      await options.onProgress?.({
        iteration: info.evaluation,
        iterations,
        total: t.total,
        content: t.content,
        style: t.style,
        tv: t.tv,
        seconds: (performance.now() - started) / 1000,
      });
      if (snapshotEvery !== undefined && options.onSnapshot && info.evaluation % snapshotEvery === 0) {
        await options.onSnapshot(finish(info.best), info.evaluation);
      }
    };
    const finish = (x: Float32Array): RgbImage => {
      const img = fromNetworkInput(x, content.width, content.height);
      return options.originalColors ? keepOriginalColors(img, content) : img;
    };
    const common = {
      maxEvaluations: iterations,
      onEvaluation: report,
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const result =
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
    if (result.reason === "diverged" || !bestTerms) {
      throw new DivergedError(
        `the optimisation diverged at iteration ${evaluation} (loss ${latest?.total ?? "NaN"}); nothing was saved. ` +
          "Try smaller weights, a smaller learning rate or the L-BFGS line search (--line-search strong-wolfe).",
      );
    }
    return {
      image: finish(result.x),
      loss: bestTerms,
      iterations: result.evaluations,
      seconds: (performance.now() - started) / 1000,
      reason: result.reason,
    };
  } finally {
    await objective.release();
  }
}
