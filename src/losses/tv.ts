import type { Graph, Tensor } from "../graph/graph.js";
import { staticShape } from "../graph/graph.js";

/**
 * Total variation: (sum of squared differences between horizontal neighbours
 * + the same vertically) / (3*H*W), on the image itself.
 */
export function tvLoss(g: Graph, x: Tensor): Tensor {
  const [, c, h, w] = staticShape(x) as [number, number, number, number];
  const squaredSum = (axis: number) => {
    const next = g.op1("Slice", [x, g.ints([1]), g.ints([Number.MAX_SAFE_INTEGER]), g.ints([axis])]);
    const prev = g.op1("Slice", [x, g.ints([0]), g.ints([-1]), g.ints([axis])]);
    const d = g.op1("Sub", [next, prev]);
    return g.op1("ReduceSum", [g.op1("Mul", [d, d])], { keepdims: 0 });
  };
  const sum = g.op1("Add", [squaredSum(3), squaredSum(2)]);
  return g.op1("Mul", [sum, g.scalar(1 / (c * h * w))]);
}
