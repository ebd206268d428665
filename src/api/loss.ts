import type { Evaluation } from "../objective/objective.js";
import { NODE_ENVIRONMENT } from "../stylize/node-environment.js";
import { computeLossIn, type LossRequest } from "./loss-core.js";

export type { LossRequest } from "./loss-core.js";

/**
 * Every term of the objective, the weighted total and its gradient for one image, in Node (see
 * computeLossIn). Images are taken at their own size, so the numbers compare with reference.py's.
 */
export function computeLoss(req: LossRequest): Promise<Evaluation> {
  return computeLossIn(NODE_ENVIRONMENT, req);
}
