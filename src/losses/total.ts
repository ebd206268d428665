import type { Graph, Tensor } from "../graph/graph.js";

/** sum of weight * term: the objective's total from its terms. */
export function weightedTotal(g: Graph, terms: readonly { term: Tensor; weight: number }[]): Tensor {
  let total: Tensor | undefined;
  for (const { term, weight } of terms) {
    const t = g.op1("Mul", [term, g.scalar(weight)]);
    total = total === undefined ? t : g.op1("Add", [total, t]);
  }
  if (total === undefined) throw new Error("weightedTotal: no term");
  return total;
}
