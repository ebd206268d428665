import { checkStylizeIn } from "./check.js";
import { type StylizeResult, stylizeIn } from "./core.js";
import { NODE_ENVIRONMENT } from "./node-environment.js";
import type { StylizeOptions } from "./options.js";
import type { AdviceLimits } from "./plan.js";

export type { CheckedRun } from "./check.js";
export type { StylizeResult } from "./core.js";
export { MIXED_FP32_SHARE, precisionPhases } from "./precision.js";
export { autoScales, planScales } from "./scales.js";

/**
 * Repaints the content image in the style of the style image(s): for each scale (one, or coarse to
 * fine), builds the objective as the evaluation plan says, then minimises it over the pixels. In
 * Node: images through sharp, weights from a path or the cache (src/browser/ has the browser's).
 */
export function stylize(options: StylizeOptions): Promise<StylizeResult> {
  return stylizeIn(NODE_ENVIRONMENT, options);
}

/**
 * The checks stylize() makes before any work, without the work (see checkStylizeIn); a server calls
 * it with its own caps as `limits`, so that the advice in an error names only values it accepts.
 */
export function checkStylize(
  options: StylizeOptions,
  limits?: AdviceLimits,
  device = options.device ?? "auto",
) {
  return checkStylizeIn(NODE_ENVIRONMENT, options, limits, device);
}
