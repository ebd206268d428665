import { DivergedError, message, opt } from "../errors.js";
import { MEAN_RGB } from "../image/image.js";
import type { LossTerms, Objective } from "../objective/objective.js";
import { adam } from "../optim/adam.js";
import { type LbfgsOptions, lbfgs, MAX_STEP } from "../optim/lbfgs.js";
import type { Differentiable, EvaluationInfo, MinimizeResult } from "../optim/types.js";
import { isFiniteVector } from "../optim/vector.js";
import { DEFAULTS } from "../options/defaults.js";
import { STYLIZE_DEFAULTS, type StylizeOptions } from "./options.js";
import type { Phase } from "./precision.js";
import { IDENTITY, type Preconditioner } from "./precondition.js";

/**
 * L-BFGS's first step (and each after a restart) moves the pixels by at most this much. PyTorch's
 * step of 1/|g|_1 moves them by about 1e-3, where the gradient's changes are the kinks of ReLU and
 * max-pooling, not curvature: from a picture of flat colours and hard edges that first pair made
 * every later step as small (a 128 px logo: loss 6.2e8 to 6.0e8 in 30 iterations; with this, 1.8e7).
 * On photos it changes nothing measurable (256 px, 150 evaluations: 2.754e6 against 2.749e6).
 */
export const FIRST_STEP = 1;

/** The stop rule's window: the loss's fall over this many evaluations is what `stopBelow` bounds. */
export const STOP_WINDOW = 20;

/** What the optimisation reads of the objective: its evaluation, and its arithmetic's switch. */
type Evaluated = Pick<Objective, "evaluate" | "usePrecision">;

/**
 * The optimisation in the preconditioned variables z, x = x0 + P z: the same objective seen through
 * P, whose gradient is P g. The results and snapshots come back as pictures.
 */
async function optimizeInVariables(
  objective: Evaluated,
  x0: Float32Array,
  phases: readonly Phase[],
  options: StylizeOptions,
  report: (info: EvaluationInfo, terms: LossTerms) => Promise<void>,
  p: Preconditioner,
): Promise<{ result: MinimizeResult; terms: LossTerms }> {
  const tmp = new Float32Array(x0.length);
  const toX = (z: Float32Array): Float32Array => {
    p.apply(z, tmp);
    const x = new Float32Array(x0.length);
    for (let i = 0; i < x.length; i++) x[i] = (x0[i] as number) + (tmp[i] as number);
    return x;
  };
  const through: Evaluated = {
    usePrecision: (precision) => objective.usePrecision(precision),
    evaluate: async (z) => {
      const e = await objective.evaluate(toX(z));
      const gradient = new Float32Array(z.length);
      p.apply(e.gradient, gradient);
      return { ...e, gradient };
    },
  };
  const outcome = await optimizeOnce(
    through,
    new Float32Array(x0.length),
    "lbfgs",
    phases,
    options,
    (info, terms) => {
      let best: Float32Array | undefined;
      // The picture of the best z, made only if the caller reads it (snapshots).
      return report(
        Object.defineProperty({ ...info }, "best", {
          get: () => (best ??= toX(info.best)),
        }) as EvaluationInfo,
        terms,
      );
    },
    IDENTITY,
    p.gain,
  );
  return { ...outcome, result: { ...outcome.result, x: toX(outcome.result.x) } };
}

/**
 * One optimisation over one objective, with the divergence checks. With several phases the
 * arithmetic changes at each boundary inside one optimiser run: its history stays (measured: a
 * restarted L-BFGS lost more than int8's noise costs), but the best point is judged by the last
 * phase's values alone, since int8's and float32's values of one point differ a little.
 */
export async function optimizeOnce(
  objective: Evaluated,
  x0: Float32Array,
  optimizer: "lbfgs" | "adam",
  phases: readonly Phase[],
  options: StylizeOptions & Pick<LbfgsOptions, "history">,
  report: (info: EvaluationInfo, terms: LossTerms) => Promise<void>,
  /** L-BFGS moves z and the picture is x0 + P z (see precondition.ts); Adam moves the pixels. */
  preconditioner: Preconditioner = IDENTITY,
  /** How much larger a step of the picture can be than the optimiser's (P's largest gain). */
  gain = 1,
): Promise<{ result: MinimizeResult; terms: LossTerms }> {
  if (optimizer === "lbfgs" && preconditioner !== IDENTITY)
    return optimizeInVariables(objective, x0, phases, options, report, preconditioner);
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
    latest = {
      total: e.total,
      content: e.content,
      style: e.style,
      tv: e.tv,
      ...(e.temporal === undefined ? {} : { temporal: e.temporal }),
    };
    if (!anyBest || e.total < anyBest.value) anyBest = { value: e.total, terms: latest };
    if (evaluation > lastPhaseStart && e.total < bestValue) {
      bestValue = e.total;
      bestTerms = latest;
      if (phases.length > 1) bestX = Float32Array.from(x);
    }
    // A NaN anywhere in the gradient poisons every later step: treat it as a NaN loss.
    return { value: isFiniteVector(e.gradient) ? e.total : Number.NaN, gradient: e.gradient };
  };
  // The stop rule: the last phase's best loss fell by less than stopBelow over STOP_WINDOW evaluations.
  const stopBelow = options.stopBelow ?? DEFAULTS.stopBelow;
  const bests: number[] = [];
  const converged = () => {
    if (evaluation <= lastPhaseStart || stopBelow <= 0) return false;
    bests.push(bestValue);
    const before = bests[bests.length - 1 - STOP_WINDOW];
    return before !== undefined && before - bestValue < stopBelow * before;
  };
  const common = {
    maxEvaluations: boundary,
    onEvaluation: (info: EvaluationInfo) => report(info, latest as LossTerms),
    converged,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  let result =
    optimizer === "adam"
      ? await adam(f, x0, {
          ...common,
          ...((options.bounds ?? DEFAULTS.bounds) === "pixels" ? { project: keepPixels } : {}),
          learningRate: options.learningRate ?? STYLIZE_DEFAULTS.adamLearningRate,
        })
      : await lbfgs(f, x0, {
          ...common,
          learningRate: options.learningRate ?? STYLIZE_DEFAULTS.lbfgsLearningRate,
          historySize: options.historySize ?? STYLIZE_DEFAULTS.historySize,
          lineSearch: options.lineSearch ?? STYLIZE_DEFAULTS.lineSearch,
          ...(options.history === undefined ? {} : { history: options.history }),
          firstStep: FIRST_STEP,
          ...((options.bounds ?? DEFAULTS.bounds) === "pixels" ? { project: keepPixels } : {}),
          // In preconditioned variables a step of the picture is up to `gain` times the step of z.
          maxStep: MAX_STEP / gain,
        });
  if (bestX) result = { ...result, x: bestX, value: bestValue };
  if (result.reason === "diverged" || !bestTerms) {
    // Stopped before the last phase evaluated anything: the optimiser's own best stands.
    if (result.reason === "aborted" && anyBest) return { result, terms: anyBest.terms };
    throw new DivergedError(
      message`the optimisation diverged at iteration ${evaluation} (loss ${latest?.total ?? "NaN"}); nothing was saved. Try smaller weights, a smaller learning rate or the L-BFGS line search (${opt("lineSearch", "strong-wolfe")}).`,
    );
  }
  return { result, terms: bestTerms };
}

/** Keeps a network-input picture (3 planes, the mean subtracted) within the pixels' 0..255. */
export function keepPixels(x: Float32Array): void {
  const plane = x.length / 3;
  for (let c = 0; c < 3; c++) {
    const lo = -(MEAN_RGB[c] as number);
    const hi = 255 + lo;
    const end = (c + 1) * plane;
    for (let i = c * plane; i < end; i++) {
      const v = x[i] as number;
      if (v < lo) x[i] = lo;
      else if (v > hi) x[i] = hi;
    }
  }
}
