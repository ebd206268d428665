import { message, opt, UsageError } from "../errors.js";
import { positiveInteger, STYLIZE_DEFAULTS, type StylizeOptions } from "./options.js";

/** One scale of a run: its long edge and its evaluations. */
export interface ScaleStep {
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
export function planScales(options: Pick<StylizeOptions, "size" | "scales" | "iterations">): ScaleStep[] {
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
        ? message`${list.length} iteration counts given, but ${opt("size", size)} runs coarse to fine at ${sizes.join(",")} by default: give ${sizes.length} counts, or choose the scales (${opt("scales")}; ${opt("scales", size)} for one scale)`
        : `${list.length} iteration counts given for ${sizes.length} scales`,
    );
  }
  return sizes.map((s, i) => ({ size: s, iterations: positiveInteger("iterations", list[i], 1) }));
}
