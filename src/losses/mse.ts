import type { Graph, Tensor } from "../graph/graph.js";

/** Sum of t's squared elements, as a scalar. */
export function sumOfSquares(g: Graph, t: Tensor): Tensor {
  return g.op1("ReduceSum", [g.op1("Mul", [t, t])], { keepdims: 0 });
}

/**
 * sum(((a - b) * mask)^2) / count: the mean squared error over `count` positions, of which a tile
 * sees only those its mask keeps (the picture's count, so that the tiles' terms add up). Without a
 * mask it is the plain mean over count = every element.
 */
export function squaredError(g: Graph, a: Tensor, b: Tensor, count: number, mask?: Tensor): Tensor {
  const d = g.op1("Sub", [a, b]);
  return g.op1("Mul", [sumOfSquares(g, mask ? g.op1("Mul", [d, mask]) : d), g.scalar(1 / count)]);
}

/** mean((a - b)^2) over every element, as a scalar. */
export function meanSquaredError(g: Graph, a: Tensor, b: Tensor): Tensor {
  const d = g.op1("Sub", [a, b]);
  return g.op1("ReduceMean", [g.op1("Mul", [d, d])], { keepdims: 0 });
}
