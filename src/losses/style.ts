import type { Graph, Tensor } from "../graph/graph.js";
import { meanSquaredError } from "./mse.js";

/**
 * F F^T for a 1 x C x H x W activation, without the 1/(C*H*W): a Gram matrix of a tile's part adds
 * up with the others' to the picture's, and the targets' graph runs on images of any size.
 */
export function gramUnnormalised(g: Graph, features: Tensor): Tensor {
  const channels = features.shape[1];
  if (typeof channels !== "number") throw new Error("gram: the channel count must be static");
  const m = g.op1("Reshape", [features, g.ints([channels, -1])]);
  return g.op1("MatMul", [m, g.op1("Transpose", [m], { perm: [1, 0] })]);
}

/**
 * style(l) = mean over C*C of (G * scale - T)^2, from the unnormalised Gram G = F F^T of the whole
 * picture (computed in the graph, or summed over tiles) and scale = 1/(C*H*W): the spec's
 * G_l = F F^T / (C*H*W) against the target's.
 */
export function styleLoss(g: Graph, gram: Tensor, scale: Tensor, target: Tensor): Tensor {
  return meanSquaredError(g, g.op1("Mul", [gram, scale]), target);
}
