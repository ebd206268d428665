import { message, opt, StylegramError, UsageError } from "../errors.js";
import { toNetworkInput } from "../image/image.js";
import type { ImageSource } from "../image/source.js";
import type { VggWeights } from "../network/weights.js";
import { type Evaluation, Objective } from "../objective/objective.js";
import { OBJECTIVE_OPTION_KEYS, type ObjectiveOptions, resolveObjective } from "../objective/options.js";
import { checkImageSize } from "../objective/size.js";
import { checkTileEdge } from "../objective/tiling.js";
import { checkPresent, knownKeys } from "../options/check.js";
import type { DeviceRequest } from "../runtime/device.js";
import { bindingLimit } from "../stylize/check.js";
import type { Environment } from "../stylize/environment.js";
import { planEvaluation } from "../stylize/plan.js";
import { imageValue, listOf } from "../validate.js";

export interface LossRequest {
  content: ImageSource;
  styles: readonly ImageSource[];
  /** The image whose loss is computed; it must have the content image's size. */
  image: ImageSource;
  options?: ObjectiveOptions;
  /** A weights folder, loaded weights, or undefined for $STYLEGRAM_WEIGHTS. */
  weights?: string | VggWeights;
  threads?: number;
  /** "cpu", "webgpu" or "auto" (default: auto, which takes a real GPU when there is one). */
  device?: DeviceRequest;
  /**
   * Evaluate in tiles of this edge in pixels (same result, memory bounded by the tile). Default:
   * whole, or in the largest tiles that fit when the whole picture would not fit in memory.
   */
  tile?: number;
}

/**
 * Every term of the objective, the weighted total and its gradient for one
 * image. Images are taken at their own size, so the numbers are comparable
 * with reference.py's.
 */
export async function computeLossIn(env: Environment, req: LossRequest): Promise<Evaluation> {
  validateLossRequest(req);
  const weights = await env.weights(req.weights);
  const [content, image, ...styles] = await Promise.all([
    env.loadImage(req.content),
    env.loadImage(req.image),
    ...req.styles.map((s) => env.loadImage(s)),
  ]);
  if (!content || !image) throw new StylegramError("the content image and the image are required");
  if (image.width !== content.width || image.height !== content.height) {
    throw new StylegramError(
      message`the image is ${image.width}x${image.height} but the content image is ${content.width}x${content.height}: the content loss compares them pixel for pixel, so they must have the same size: resize the content image to ${image.width}x${image.height}, or make the picture at the photo's size (${opt("size", Math.max(content.width, content.height))})`,
    );
  }
  const o = resolveObjective(req.options ?? {}, styles.length);
  // Taken at their own sizes: too small is the image's problem, not a size to change.
  checkImageSize("content image", content, [...o.contentLayers, ...o.styleLayers]);
  styles.forEach((st, i) => {
    checkImageSize(`style image ${styles.length > 1 ? i + 1 : ""}`.trim(), st, o.styleLayers);
  });
  const device = (await env.chooseDevice(req.device ?? "auto")).device;
  // The same plan as stylize()'s: whole, or in the tiles memory needs (or --tile asks for).
  const plan = await planEvaluation({
    content,
    styles,
    sizes: [Math.max(content.width, content.height)],
    styleScale: 1,
    stylesAsGiven: true,
    objective: o,
    optimizer: "none",
    historySize: undefined,
    maxMemory: undefined,
    availableMemory: env.availableMemory,
    device,
    precision: "fp32",
    ...(req.tile === undefined ? {} : { tile: checkTileEdge(req.tile) }),
    ...bindingLimit(env, device),
  });
  const tile = plan.scales[0]?.tile;
  const objective = await Objective.create({
    weights,
    content,
    styles,
    ...(req.options ? { options: req.options } : {}),
    ...(tile === undefined ? {} : { tile }),
    runtime: { device, ...(req.threads === undefined ? {} : { threads: req.threads }) },
  });
  try {
    return await objective.evaluate(toNetworkInput(image));
  } finally {
    await objective.release();
  }
}

/** Every field of a loss request checked for type, naming the field (JavaScript callers can pass anything). */
function validateLossRequest(req: LossRequest): void {
  if (typeof req !== "object" || req === null) throw new UsageError("computeLoss() takes a request object");
  knownKeys("computeLoss()", req, [
    "content",
    "styles",
    "image",
    "options",
    "weights",
    "threads",
    "device",
    "tile",
  ]);
  if (req.content === undefined)
    throw new UsageError("content is required: a file path or an RgbImage", { option: "content" });
  imageValue("content", req.content);
  if (req.image === undefined)
    throw new UsageError("image is required: the image whose loss is computed", { option: "image" });
  imageValue("image", req.image);
  listOf("styles", req.styles, imageValue);
  if (req.options !== undefined && (typeof req.options !== "object" || req.options === null)) {
    throw new UsageError("options must be an object of objective options", { option: "options" });
  }
  if (req.options !== undefined) knownKeys("computeLoss() options", req.options, OBJECTIVE_OPTION_KEYS);
  checkPresent(req as unknown as Record<string, unknown>, ["weights", "threads", "device", "tile"]);
}
