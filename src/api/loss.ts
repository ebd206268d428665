import { StylegramError } from "../errors.js";
import { toNetworkInput } from "../image/image.js";
import type { VggWeights } from "../network/weights.js";
import { type Evaluation, Objective } from "../objective/objective.js";
import type { ObjectiveOptions } from "../objective/options.js";
import { type ImageSource, resolveImage, resolveWeights } from "./inputs.js";

export interface LossRequest {
  content: ImageSource;
  styles: readonly ImageSource[];
  /** The image whose loss is computed; it must have the content image's size. */
  image: ImageSource;
  options?: ObjectiveOptions;
  /** A weights folder, loaded weights, or undefined for $STYLEGRAM_WEIGHTS. */
  weights?: string | VggWeights;
  threads?: number;
}

/**
 * Every term of the objective, the weighted total and its gradient for one
 * image. Images are taken at their own size, so the numbers are comparable
 * with reference.py's.
 */
export async function computeLoss(req: LossRequest): Promise<Evaluation> {
  const weights = await resolveWeights(req.weights);
  const [content, image, ...styles] = await Promise.all([
    resolveImage(req.content),
    resolveImage(req.image),
    ...req.styles.map((s) => resolveImage(s)),
  ]);
  if (!content || !image) throw new Error("unreachable");
  if (image.width !== content.width || image.height !== content.height) {
    throw new StylegramError(
      `the image is ${image.width}x${image.height} but the content image is ${content.width}x${content.height}: ` +
        "the content loss compares them pixel for pixel, so they must have the same size",
    );
  }
  const objective = await Objective.create({
    weights,
    content,
    styles,
    ...(req.options ? { options: req.options } : {}),
    ...(req.threads === undefined ? {} : { runtime: { threads: req.threads } }),
  });
  try {
    return await objective.evaluate(toNetworkInput(image));
  } finally {
    await objective.release();
  }
}
