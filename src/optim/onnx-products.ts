import type { Graph } from "../graph/graph.js";
import { CompiledGraph } from "../runtime/session.js";
import type { PairProducts } from "./compact.js";
import { pairCombineGraph, pairDotsGraph } from "./pair-graphs.js";

/**
 * The compact form's products run by onnxruntime-node on the pairs in place (the Float32Array is
 * handed over without a copy): vectorised MLAS kernels, summing in float32 (docs/lbfgs.md measures
 * what that changes).
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
    this.dotsGraph ??= this.compile(pairDotsGraph(n));
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
  ): Promise<void> {
    const { n } = this;
    this.combineGraph ??= this.compile(pairCombineGraph(n));
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

  private compile(g: Graph): Promise<CompiledGraph> {
    return CompiledGraph.compile(g, this.threads === undefined ? {} : { threads: this.threads });
  }
}
