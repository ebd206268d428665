import { DivergedError, message, opt } from "../errors.js";
import type { LossTerms, Objective } from "../objective/objective.js";
import { adam } from "../optim/adam.js";
import { lbfgs } from "../optim/lbfgs.js";
import type { Differentiable, EvaluationInfo, MinimizeResult } from "../optim/types.js";
import { isFiniteVector } from "../optim/vector.js";
import { STYLIZE_DEFAULTS, type StylizeOptions } from "./options.js";
import type { Phase } from "./precision.js";

/**
 * One optimisation over one objective, with the divergence checks. With several phases the
 * arithmetic changes at each boundary inside one optimiser run: its history stays (measured: a
 * restarted L-BFGS lost more than int8's noise costs), but the best point is judged by the last
 * phase's values alone, since int8's and float32's values of one point differ a little.
 */
export async function optimizeOnce(
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
      message`the optimisation diverged at iteration ${evaluation} (loss ${latest?.total ?? "NaN"}); nothing was saved. Try smaller weights, a smaller learning rate or the L-BFGS line search (${opt("lineSearch", "strong-wolfe")}).`,
    );
  }
  return { result, terms: bestTerms };
}
