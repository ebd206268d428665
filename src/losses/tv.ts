import type { Graph, Tensor } from "../graph/graph.js";
import { staticShape } from "../graph/graph.js";
import { sumOfSquares } from "./mse.js";

/** Where a tile's TV pairs lie: pixels it owns, and pixels inside the picture (1 x 1 x H x W each). */
export interface TvMasks {
  owned: Tensor;
  valid: Tensor;
}

/**
 * Total variation: (sum of squared differences between horizontal neighbours + the same vertically)
 * / count, count = 3*H*W of the picture. A tile counts the pairs whose first pixel it owns and whose
 * second lies in the picture, so that the tiles' sums are the picture's.
 */
export function tvLoss(g: Graph, x: Tensor, count: number, masks?: TvMasks): Tensor {
  const [, , h, w] = staticShape(x) as [number, number, number, number];
  const slice = (t: Tensor, axis: number, from: number, to: number) =>
    g.op1("Slice", [t, g.ints([from]), g.ints([to]), g.ints([axis])]);
  const pairs = (axis: number, n: number) => {
    const d = g.op1("Sub", [slice(x, axis, 1, n), slice(x, axis, 0, n - 1)]);
    if (!masks) return sumOfSquares(g, d);
    const m = g.op1("Mul", [slice(masks.owned, axis, 0, n - 1), slice(masks.valid, axis, 1, n)]);
    return sumOfSquares(g, g.op1("Mul", [d, m]));
  };
  return g.op1("Mul", [g.op1("Add", [pairs(3, w), pairs(2, h)]), g.scalar(1 / count)]);
}
