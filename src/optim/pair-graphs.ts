import { Graph } from "../graph/graph.js";

// The compact form's two products as ONNX graphs over the pairs, `rows` x n: any onnxruntime
// (onnxruntime-node here, onnxruntime-web in a browser) can run them. Both have one row on the left,
// so that onnxruntime's MLAS runs its matrix-vector kernels on the pairs in place.

/** dots = g h' (inputs h [rows, n], g [1, n]); the transpose is fused into the MatMul, never copied. */
export function pairDotsGraph(n: number): Graph {
  const gr = new Graph();
  const pairs = gr.input("h", ["rows", n]);
  const g = gr.input("g", [1, n]);
  gr.output(gr.op1("MatMul", [g, gr.op1("Transpose", [pairs], { perm: [1, 0] })]), "dots");
  return gr;
}

/** d = c h - gamma g (inputs h [rows, n], c [1, rows], g [1, n], gamma [1]). */
export function pairCombineGraph(n: number): Graph {
  const gr = new Graph();
  const pairs = gr.input("h", ["rows", n]);
  const c = gr.input("c", [1, "rows"]);
  const g = gr.input("g", [1, n]);
  const gamma = gr.input("gamma", [1]);
  gr.output(gr.op1("Sub", [gr.op1("MatMul", [c, pairs]), gr.op1("Mul", [gamma, g])]), "d");
  return gr;
}
