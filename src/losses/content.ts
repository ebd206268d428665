import type { Graph, Tensor } from "../graph/graph.js";
import { squaredError } from "./mse.js";

/**
 * content(l) = mean over the picture's C*h*w positions of (F_l(x) - F_l(content))^2. `count` is the
 * picture's C*h*w; a tile passes the mask of the positions it owns, so that its terms add up.
 */
export function contentLoss(
  g: Graph,
  features: Tensor,
  target: Tensor,
  count: number,
  owned?: Tensor,
): Tensor {
  return squaredError(g, features, target, count, owned);
}
