import type { ImageSource } from "../api/inputs.js";
import { UsageError } from "../errors.js";
import type { RgbImage } from "../image/image.js";
import type { VggWeights } from "../network/weights.js";
import type { ObjectiveOptions } from "../objective/options.js";

/** Defaults of stylize() and the CLI: see the README for how they were chosen. */
export const STYLIZE_DEFAULTS = {
  size: 512,
  styleScale: 1,
  iterations: 300,
  init: "content" as const,
  seed: 0,
  optimizer: "lbfgs" as const,
  historySize: 100,
  lineSearch: "none" as const,
  adamLearningRate: 10,
  lbfgsLearningRate: 1,
};

export type Init = "noise" | "content" | "style" | { image: ImageSource };

export interface Progress {
  /** 1-based evaluation count; an iteration is one evaluation of the loss and its gradient. */
  iteration: number;
  iterations: number;
  total: number;
  content: Record<string, number>;
  style: Record<string, number>;
  tv: number;
  /** Seconds since the optimisation started (building the objective of each scale included). */
  seconds: number;
  /** 1-based index of the scale being optimised, of `scales` (1 of 1 without multi-scale). */
  scale: number;
  scales: number;
  width: number;
  height: number;
}

export interface StylizeOptions extends ObjectiveOptions {
  content: ImageSource;
  /** One or more style images; blended by `styleBlend`. */
  styles: readonly ImageSource[];
  /** Long edge of the output in pixels (default 512). */
  size?: number;
  /** Style images are resized to size x styleScale on their long edge (default 1): smaller copies smaller strokes. */
  styleScale?: number;
  /** Where the optimisation starts (default "content"). */
  init?: Init;
  /** Seed of the noise for init "noise" (default 0). */
  seed?: number;
  /** Number of loss evaluations (default 300); with `scales`, one count for every scale or a list. */
  iterations?: number | readonly number[];
  /**
   * Coarse-to-fine: long edges optimised in turn, each starting from the previous
   * result upsampled; the last is the output size. Default: just `size`.
   */
  scales?: readonly number[];
  optimizer?: "lbfgs" | "adam";
  /** Step size: L-BFGS's without line search (default 1), Adam's in pixel units (default 10). */
  learningRate?: number;
  /** L-BFGS history size (default 100). */
  historySize?: number;
  /** L-BFGS line search (default none). */
  lineSearch?: "none" | "strong-wolfe";
  /** Keep the content's colours: only the luminance is stylized. */
  originalColors?: boolean;
  /** Weights folder, loaded weights, or undefined for $STYLEGRAM_WEIGHTS. */
  weights?: string | VggWeights;
  threads?: number;
  /** Called after every evaluation. */
  onProgress?: (p: Progress) => void | Promise<void>;
  /** Called with the best image so far every `snapshotEvery` iterations. */
  onSnapshot?: (image: RgbImage, iteration: number) => void | Promise<void>;
  snapshotEvery?: number;
  /** Stops early; stylize() then returns the best image so far. */
  signal?: AbortSignal;
}

export function positiveInteger(name: string, v: number | undefined, fallback: number): number {
  const value = v ?? fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`${name} must be a whole number >= 1, got ${value}`);
  return value;
}

export function positiveNumber(name: string, v: number | undefined, fallback: number): number {
  const value = v ?? fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new UsageError(`${name} must be a number > 0, got ${value}`);
  return value;
}
