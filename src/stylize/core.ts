import { StoppedBeforeStartError, StoppedError } from "../errors.js";
import { keepOriginalColors, matchColorHistogram } from "../image/colors.js";
import { fromNetworkInput, type RgbImage, toNetworkInput } from "../image/image.js";
import { resizeMask } from "../image/masks.js";
import type { ImageSource } from "../image/source.js";
import { type LossTerms, Objective, type TemporalTarget } from "../objective/objective.js";
import type { MinimizeResult, StopReason } from "../optim/types.js";
import { DEFAULTS } from "../options/defaults.js";
import { checkStylizeIn } from "./check.js";
import type { Environment } from "./environment.js";
import { positiveInteger, STYLIZE_DEFAULTS, type StylizeOptions } from "./options.js";
import type { ScalePlan } from "./plan.js";
import { IDENTITY, pyramidPreconditioner, pyramidRadius } from "./precondition.js";
import { optimizeOnce } from "./run.js";
import { initialImage } from "./start.js";

export interface StylizeResult {
  image: RgbImage;
  /** The terms at the returned image (the best evaluated). */
  loss: LossTerms;
  iterations: number;
  seconds: number;
  /** "aborted" when the signal stopped it early. */
  reason: StopReason;
}

/** Seconds left: this scale's time per unit of cost, times the cost of the evaluations still to run. */
function timeLeft(scales: readonly ScalePlan[], k: number, done: number, secondsPerCost: number): number {
  let cost = 0;
  scales.forEach((s, j) => {
    const evaluations = s.phases.reduce((n, p) => n + p.evaluations, 0);
    if (j > k) cost += s.cost * evaluations;
    if (j === k) cost += s.cost * (evaluations - done);
  });
  return secondsPerCost * cost;
}

/** The temporal term's inputs at a scale's size, in the network's input space. */
async function temporalAt(
  env: Environment,
  t: NonNullable<StylizeOptions["temporal"]>,
  content: RgbImage,
): Promise<TemporalTarget> {
  const { width, height } = content;
  const same = t.target.width === width && t.target.height === height;
  const target = same ? t.target : await env.resizeImage(t.target, width, height);
  const certainty = same ? t.certainty : resizeMask(t.certainty, width, height);
  return { target: toNetworkInput(target), certainty: certainty.data };
}

/**
 * Repaints the content image in the style of the style image(s): for each scale (one, or coarse to
 * fine), builds the objective as the evaluation plan says, then minimises it over the pixels.
 */
export async function stylizeIn(env: Environment, options: StylizeOptions): Promise<StylizeResult> {
  const first = await checkStylizeIn(env, options);
  for (const message of first.notices) options.onStage?.({ stage: "notice", message });
  const { steps, styleScale, optimizer, masks, colors } = first;
  const seed = options.seed ?? STYLIZE_DEFAULTS.seed;
  const snapshotEvery =
    options.snapshotEvery === undefined
      ? undefined
      : positiveInteger("snapshotEvery", options.snapshotEvery, 1);
  const stopped = () => options.signal?.aborted === true;
  if (stopped()) throw new StoppedBeforeStartError();
  const choice = await env.chooseDevice(options.device ?? "auto");
  // The plan for the device chosen: a GPU runs float32 (and its memory is not the CPU's).
  const { plan } =
    choice.device === (options.device ?? "auto")
      ? first
      : await checkStylizeIn(env, options, undefined, choice.device);
  options.onStage?.({
    stage: "device",
    device: choice.device,
    reason: choice.reason,
    precision: plan.precision,
  });
  const runtime = {
    device: choice.device,
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  };
  options.onStage?.({ stage: "weights" });
  const weights = await env.weights(options.weights);
  const totalIterations = steps.reduce((n, p) => n + p.iterations, 0);

  const started = performance.now();
  let done = 0;
  let x: Float32Array | undefined;
  let last: { result: MinimizeResult; terms: LossTerms; content: RgbImage } | undefined;
  for (const [k, step] of steps.entries()) {
    if (stopped()) break;
    const scale = plan.scales[k] as ScalePlan;
    options.onStage?.({
      stage: "objective",
      scale: k + 1,
      scales: steps.length,
      width: scale.width,
      height: scale.height,
      estimatedBytes: scale.peakBytes,
      availableBytes: plan.available,
      ...(scale.tile === undefined ? {} : { tile: scale.tile }),
    });
    const content = await env.loadImage(options.content, { longEdge: step.size });
    const styleSize = Math.max(1, Math.round(step.size * styleScale));
    const loaded = await Promise.all(options.styles.map((st) => env.loadImage(st, { longEdge: styleSize })));
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
            env,
            options.init ?? STYLIZE_DEFAULTS.init,
            content,
            colors === "histogram" ? (styles[0] as RgbImage) : (options.styles[0] as ImageSource),
            seed,
          )
        : toNetworkInput(
            await env.resizeImage(
              fromNetworkInput(x, last.content.width, last.content.height),
              content.width,
              content.height,
            ),
          );
    const finish = (v: Float32Array): RgbImage => {
      const img = fromNetworkInput(v, content.width, content.height);
      return colors === "luminance" ? keepOriginalColors(img, content) : img;
    };
    const temporal = options.temporal && (await temporalAt(env, options.temporal, content));
    let objective: Objective;
    try {
      objective = await Objective.create({
        weights,
        content,
        styles,
        options,
        runtime,
        precision: scale.phases[0]?.precision ?? "fp32",
        ...(scale.tile === undefined ? {} : { tile: scale.tile }),
        ...(contentMasks ? { masks: contentMasks } : {}),
        ...(styleMasks ? { styleMasks } : {}),
        ...(temporal ? { temporal } : {}),
        ...(options.targetCache ? { cache: options.targetCache } : {}),
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
        scale.phases,
        {
          ...options,
          historySize: scale.historySize,
          ...(env.lbfgsHistory === undefined ? {} : { history: env.lbfgsHistory }),
        },
        async (info, t) => {
          const iteration = done + info.evaluation;
          const perCost = (performance.now() - scaleStarted) / 1000 / (info.evaluation * scale.cost);
          await options.onProgress?.({
            iteration,
            iterations: totalIterations,
            loss: t.total,
            total: t.total,
            content: t.content,
            style: t.style,
            tv: t.tv,
            ...(t.temporal === undefined ? {} : { temporal: t.temporal }),
            seconds: (performance.now() - started) / 1000,
            timing: info.timing,
            scale: k + 1,
            scales: steps.length,
            width: content.width,
            height: content.height,
            device: choice.device,
            precision: objective.precision,
            etaSeconds: timeLeft(plan.scales, k, info.evaluation, perCost),
          });
          if (snapshotEvery !== undefined && options.onSnapshot && iteration % snapshotEvery === 0) {
            await options.onSnapshot(finish(info.best), iteration);
          }
        },
        (options.precondition ?? DEFAULTS.precondition) === "pyramid"
          ? pyramidPreconditioner(content.width, content.height, pyramidRadius(content))
          : IDENTITY,
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
