import { Graph } from "../graph/graph.js";
import { CompiledGraph } from "../runtime/session.js";
import type { PairProducts } from "./compact.js";

/**
 * The compact form's products as onnxruntime MatMuls over the pairs in place (the Float32Array is
 * handed over without a copy). Both have one row on the left, so MLAS runs its threaded,
 * vectorised matrix-vector kernels: h g as MatMul(g, h') (the transpose is fused, not copied), and
 * c' h. They sum in float32 (docs/lbfgs.md measures what that changes).
 */
export class OnnxProducts implements PairProducts {
  private dotsGraph: Promise<CompiledGraph> | undefined;
  private combineGraph: Promise<CompiledGraph> | undefined;

  constructor(
    private readonly n: number,
    /** onnxruntime's threads (CompiledGraph's default when undefined: all cores). */
    private readonly threads?: number,
  ) {}

  async dots(h: Float32Array, rows: number, g: Float32Array): Promise<Float32Array> {
    const { n } = this;
    this.dotsGraph ??= compile((gr) => {
      const pairs = gr.input("h", ["rows", n]);
      const x = gr.input("g", [1, n]);
      gr.output(gr.op1("MatMul", [x, gr.op1("Transpose", [pairs], { perm: [1, 0] })]), "dots");
    }, this.threads);
    const out = await (await this.dotsGraph).run({
      h: { data: h.subarray(0, rows * n), dims: [rows, n] },
      g: { data: g, dims: [1, n] },
    });
    return (out.dots as { data: Float32Array }).data;
  }

  async combine(
    h: Float32Array,
    rows: number,
    c: Float32Array,
    gamma: number,
    g: Float32Array,
    d: Float32Array,
  ) {
    const { n } = this;
    this.combineGraph ??= compile((gr) => {
      const pairs = gr.input("h", ["rows", n]);
      const coefficients = gr.input("c", [1, "rows"]);
      const x = gr.input("g", [1, n]);
      const scale = gr.input("gamma", [1]);
      const sum = gr.op1("MatMul", [coefficients, pairs]);
      gr.output(gr.op1("Sub", [sum, gr.op1("Mul", [scale, x])]), "d");
    }, this.threads);
    const out = await (await this.combineGraph).run({
      h: { data: h.subarray(0, rows * n), dims: [rows, n] },
      c: { data: c, dims: [1, rows] },
      g: { data: g, dims: [1, n] },
      gamma: { data: Float32Array.of(gamma), dims: [1] },
    });
    d.set((out.d as { data: Float32Array }).data);
  }

  async dispose(): Promise<void> {
    const graphs = [this.dotsGraph, this.combineGraph];
    this.dotsGraph = undefined;
    this.combineGraph = undefined;
    for (const p of graphs) if (p) await (await p).release();
  }
}

function compile(build: (g: Graph) => void, threads: number | undefined): Promise<CompiledGraph> {
  const g = new Graph();
  build(g);
  return CompiledGraph.compile(g, threads === undefined ? {} : { threads });
}
