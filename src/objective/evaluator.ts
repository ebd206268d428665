import type { RgbImage } from "../image/image.js";
import type { Mask } from "../image/masks.js";
import type { VggWeights } from "../network/weights.js";
import type { Precision } from "../quantize/precision-graph.js";
import type { RuntimeOptions } from "../runtime/session.js";
import type { ResolvedObjective } from "./options.js";
import type { TargetCache } from "./targets.js";

/** Every term unweighted, and the weighted total. */
export interface LossTerms {
  total: number;
  content: Record<string, number>;
  style: Record<string, number>;
  tv: number;
  /** The temporal term (video), when the objective has one. */
  temporal?: number;
}

/**
 * A video frame's temporal term: the previous stylized frame warped to this one (1 x 3 x H x W, the
 * network's input space) and each pixel's certainty in it (H x W, 0..1), at the picture's size.
 */
export interface TemporalTarget {
  target: Float32Array;
  certainty: Float32Array;
}

export interface Evaluation extends LossTerms {
  /** d(total)/d(x), same layout as x (1 x 3 x H x W, NCHW). */
  gradient: Float32Array;
}

/** What an evaluator is built from: the objective's options resolved and its images checked. */
export interface EvaluatorInit {
  weights: VggWeights;
  o: ResolvedObjective;
  content: RgbImage;
  styles: readonly RgbImage[];
  runtime?: RuntimeOptions;
  precision: Precision;
  /** Styles by region: one mask per style image at the content's size (src/objective/regions.ts). */
  masks?: readonly Mask[];
  styleMasks?: readonly (Mask | undefined)[];
  temporal?: TemporalTarget;
  cache?: TargetCache;
  signal?: AbortSignal;
}

/**
 * One way of evaluating the objective (the whole picture in one call, or tile by tile): a strategy
 * behind Objective. Both run their graphs through PrecisionGraph, so both run in int8 too.
 */
export interface Evaluator {
  evaluate(x: Float32Array): Promise<Evaluation>;
  usePrecision(precision: Precision): Promise<void>;
  release(): Promise<void>;
  /** FLOPs of one evaluation (Conv and MatMul), counted from the graphs. */
  readonly flops: number;
}

/** The scalar output of a graph run, or a clear internal error. */
export function scalarOf(out: Record<string, { data: Float32Array }>, name: string): number {
  const t = out[name];
  if (!t) throw new Error(`the objective graph returned no ${name}`);
  return t.data[0] as number;
}
