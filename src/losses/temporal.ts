import type { Graph, Tensor } from "../graph/graph.js";

/**
 * The short-term temporal loss of Ruder, Dosovitskiy and Brox ("Artistic style transfer for videos",
 * GCPR 2016, eq. 7): sum over positions of c(p) * (x(p) - w(p))^2 / count, where w is the previous
 * stylized frame warped to this one by the optical flow, c the per-pixel certainty (0 at
 * disocclusions and motion boundaries, 1 elsewhere) and count = 3*H*W of the picture. x, w:
 * 1 x 3 x H x W in the network's input space; c: 1 x 1 x H x W, the same for the three channels.
 *
 * The long-term loss (their eq. 8) over several earlier frames is this term with the target and
 * certainty combined per pixel (src/video/temporal.ts): its certainties are disjoint, each pixel
 * taking the most recent frame it is certain in. A tile passes the mask of the pixels it owns.
 */
export function temporalLoss(
  g: Graph,
  x: Tensor,
  target: Tensor,
  certainty: Tensor,
  count: number,
  owned?: Tensor,
): Tensor {
  const d = g.op1("Sub", [x, target]);
  const weights = owned ? g.op1("Mul", [certainty, owned]) : certainty;
  const sum = g.op1("ReduceSum", [g.op1("Mul", [g.op1("Mul", [d, d]), weights])], { keepdims: 0 });
  return g.op1("Mul", [sum, g.scalar(1 / count)]);
}
