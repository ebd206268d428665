import type { Graph, Tensor } from "../graph/graph.js";
import { meanSquaredError } from "./mse.js";

/** content(l) = mean over C*H*W of (F_l(x) - F_l(content))^2. */
export function contentLoss(g: Graph, features: Tensor, target: Tensor): Tensor {
  return meanSquaredError(g, features, target);
}
