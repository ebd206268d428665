import { message, opt, UsageError } from "../errors.js";
import type { ImageSource } from "../image/source.js";
import { resolveObjective } from "../objective/options.js";
import { checkTileEdge } from "../objective/tiling.js";
import { DEFAULTS } from "../options/defaults.js";
import type { Environment } from "./environment.js";
import {
  type Colors,
  positiveNumber,
  STYLIZE_DEFAULTS,
  type StylizeOptions,
  validateStylizeOptions,
} from "./options.js";
import { type AdviceLimits, type EvaluationPlan, planEvaluation } from "./plan.js";
import { type PreparedMasks, prepareMasks } from "./region-masks.js";
import { planScales, type ScaleStep } from "./scales.js";

/** What the checks before a run found: the scales, the evaluation plan, the masks and the notes for the user. */
export interface CheckedRun {
  steps: ScaleStep[];
  plan: EvaluationPlan;
  styleScale: number;
  optimizer: "lbfgs" | "adam";
  masks: PreparedMasks;
  colors: Colors;
  notices: string[];
}

/** The GPU's largest buffer, for a plan on the GPU where the environment knows it. */
export function bindingLimit(env: Environment, device: string): { maxBindingBytes?: number } {
  const bytes = device === "webgpu" ? env.maxBindingBytes?.() : undefined;
  return bytes === undefined ? {} : { maxBindingBytes: bytes };
}

/** A note for each input file with transparent pixels: they are painted onto white, which changes the picture. */
async function transparencyNotices(env: Environment, options: StylizeOptions): Promise<string[]> {
  const files: [string, ImageSource][] = [
    ["the content image", options.content],
    ...options.styles.map((s, i): [string, ImageSource] => [
      options.styles.length > 1 ? `style image ${i + 1}` : "the style image",
      s,
    ]),
  ];
  const notices: string[] = [];
  for (const [what, src] of files) {
    if (typeof src === "string" && (await env.hasTransparency(src)))
      notices.push(`${what} (${src}) has transparent pixels: they are painted onto white before stylizing`);
  }
  return notices;
}

/**
 * The checks stylize() makes before any work, without the work: every option, the scales, each
 * image's size against the network (from its header), the device and precision, and the memory the
 * run needs. Throws the error stylize() would; a server calls it to refuse a request at once rather
 * than fail a job later, with its own caps as `limits` so that the advice names only values it accepts.
 * `device` is the device when it is already known (stylize() checks again once it has chosen).
 */
export async function checkStylizeIn(
  env: Environment,
  options: StylizeOptions,
  limits?: AdviceLimits,
  device = options.device ?? "auto",
): Promise<CheckedRun> {
  validateStylizeOptions(options);
  if (
    (options.precondition ?? DEFAULTS.precondition) === "pyramid" &&
    (options.bounds ?? DEFAULTS.bounds) === "pixels"
  ) {
    // A step of the pyramid's variables moves a whole neighbourhood: no projection keeps it a step.
    throw new UsageError(
      message`${opt("precondition", "pyramid")} moves the picture through a blur, which cannot keep each pixel within 0..255 as ${opt("bounds", "pixels")} (the default) does: add ${opt("bounds", "none")} to use it`,
      { option: "precondition" },
    );
  }
  const steps = planScales(options);
  const styleScale = positiveNumber("styleScale", options.styleScale, STYLIZE_DEFAULTS.styleScale);
  const optimizer = options.optimizer ?? STYLIZE_DEFAULTS.optimizer;
  // The masks are decoded here (they are small): an empty one is refused before any work.
  const masks = await prepareMasks(env, options, (steps.at(-1) as ScaleStep).size);
  const regions = masks.masks !== undefined || masks.styleMasks?.some((m) => m !== undefined);
  // Sizes and memory are checked from the images' headers, before the weights are read.
  const plan = await planEvaluation({
    content: options.content,
    styles: options.styles,
    sizes: steps.map((p) => p.size),
    styleScale,
    objective: resolveObjective(options, options.styles.length),
    optimizer,
    historySize: options.historySize,
    maxMemory: options.maxMemory,
    readerBytes: env.weightsReaderBytes(options.weights),
    imageSize: env.imageSize,
    availableMemory: env.availableMemory,
    device,
    precision: options.precision ?? STYLIZE_DEFAULTS.precision,
    precisionAsked: options.precision !== undefined,
    iterations: steps.map((p) => p.iterations),
    ...(options.tile === undefined ? {} : { tile: checkTileEdge(options.tile) }),
    regions: regions ? options.styles.length : 0,
    ...(limits ? { limits } : {}),
    ...bindingLimit(env, device),
  });
  const colors: Colors = options.colors ?? (options.originalColors ? "luminance" : "style");
  const notices = [...(await transparencyNotices(env, options)), ...masks.notices];
  return { steps, plan, styleScale, optimizer, masks, colors, notices };
}
