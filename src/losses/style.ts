import type { Graph, Tensor } from "../graph/graph.js";
import { staticShape } from "../graph/graph.js";
import { meanSquaredError } from "./mse.js";

/**
 * F F^T for a 1 x C x H x W activation, without the 1/(C*H*W): the target graph
 * runs on images of any size (symbolic H, W) and normalises outside.
 */
export function gramUnnormalised(g: Graph, features: Tensor): Tensor {
  const channels = features.shape[1];
  if (typeof channels !== "number") throw new Error("gram: the channel count must be static");
  const m = g.op1("Reshape", [features, g.ints([channels, -1])]);
  return g.op1("MatMul", [m, g.op1("Transpose", [m], { perm: [1, 0] })]);
}

/** G_l = F F^T / (C*H*W). */
export function gram(g: Graph, features: Tensor): Tensor {
  const [, c, h, w] = staticShape(features) as [number, number, number, number];
  return g.op1("Mul", [gramUnnormalised(g, features), g.scalar(1 / (c * h * w))]);
}

/** style(l) = mean over C*C of (G_l(x) - G_l(style))^2. */
export function styleLoss(g: Graph, features: Tensor, targetGram: Tensor): Tensor {
  return meanSquaredError(g, gram(g, features), targetGram);
}
