import type { Graph, Tensor } from "../graph/graph.js";

/** mean((a - b)^2) over every element, as a scalar. */
export function meanSquaredError(g: Graph, a: Tensor, b: Tensor): Tensor {
  const d = g.op1("Sub", [a, b]);
  return g.op1("ReduceMean", [g.op1("Mul", [d, d])], { keepdims: 0 });
}
