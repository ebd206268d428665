import type { Graph } from "./graph.js";

/** Multiply-adds x 2 of every Conv, QLinearConv and MatMul in the graph, forward and backward. */
export function countFlops(g: Graph): number {
  let flops = 0;
  for (const n of g.nodes) {
    if (n.op === "Conv" || n.op === "QLinearConv") {
      const y = g.get(n.outputs[0] as string).shape as number[];
      const w = g.get(n.inputs[n.op === "Conv" ? 1 : 3] as string).shape as number[];
      flops += 2 * y.reduce((a, b) => a * b, 1) * (w[1] as number) * (w[2] as number) * (w[3] as number);
    } else if (n.op === "MatMul") {
      const a = g.get(n.inputs[0] as string).shape as number[];
      const y = g.get(n.outputs[0] as string).shape as number[];
      flops += 2 * y.reduce((p, q) => p * q, 1) * (a[a.length - 1] as number);
    }
  }
  return flops;
}
