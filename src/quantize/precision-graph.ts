import type { Graph } from "../graph/graph.js";
import { CompiledGraph, type RuntimeOptions } from "../runtime/session.js";
import { type QuantizedGraph, quantizeInt8, withObservers } from "./int8.js";
import { DelayedScales } from "./scales.js";

/**
 * "fp32": every operation in float32, exact. "int8": the convolutions of the forward and the
 * input-gradient pass in int8 (src/quantize/int8.ts), losses and sums in float32; the first
 * evaluations run in float32 to measure the tensors' ranges.
 */
export type Precision = "fp32" | "int8";

type Feeds = Record<string, { data: Float32Array; dims: readonly number[] }>;

/**
 * Evaluations of an int8 graph that run in float32, returning their exact values, while the graph
 * measures the ranges the int8 scales start from. Two, because L-BFGS's first step is tiny: two int8
 * gradients so close together differ by rounding noise, not curvature, and the optimiser then crawls
 * (measured: three wasted evaluations with one).
 */
export const CALIBRATION_EVALUATIONS = 2;

/**
 * One float32 graph run in the arithmetic asked for: the float graph itself, its int8 rewrite, or
 * while the int8 scales are being measured, the float graph with range observers. The strategy every
 * objective layout (whole or tiled) runs its graphs through, so that each of them runs in int8.
 *
 * An evaluation may call run() several times (once per tile); endEvaluation() closes it, so that the
 * scales of the next evaluation come from the maxima over all of its runs.
 */
export class PrecisionGraph {
  private compiled: CompiledGraph | undefined;
  /** Which graph `compiled` holds. */
  private running: "fp32" | "int8" | "calibration" | undefined;
  private quantized: { graph: QuantizedGraph; scales: DelayedScales } | undefined;
  private calibrations = 0;

  constructor(
    private readonly graph: Graph,
    private readonly runtime: RuntimeOptions | undefined,
    private wanted: Precision = "fp32",
  ) {}

  get precision(): Precision {
    return this.wanted;
  }

  /** Switches the arithmetic of the following runs (the int8 scales are kept across switches). */
  async usePrecision(precision: Precision): Promise<void> {
    this.wanted = precision;
    await this.prepare();
  }

  /** Compiles the graph the next run needs, releasing the one it replaces (one session at a time). */
  async prepare(): Promise<void> {
    let next: "fp32" | "int8" | "calibration" = "fp32";
    if (this.wanted === "int8") {
      this.quantized ??= (() => {
        const graph = quantizeInt8(this.graph);
        return { graph, scales: new DelayedScales(graph.points) };
      })();
      next =
        this.quantized.scales.ready && this.calibrations >= CALIBRATION_EVALUATIONS ? "int8" : "calibration";
    }
    if (next === this.running && this.compiled) return;
    await this.compiled?.release();
    this.compiled = undefined;
    const graph =
      next === "fp32"
        ? this.graph
        : next === "calibration"
          ? withObservers(this.graph, this.quantized?.graph.points ?? [])
          : (this.quantized?.graph.graph as Graph);
    this.compiled = await CompiledGraph.compile(graph, this.runtime);
    this.running = next;
  }

  async run(feeds: Feeds, fetches?: readonly string[]): Promise<Feeds> {
    await this.prepare();
    const quantized = this.running === "int8" ? this.quantized : undefined;
    const out = await (this.compiled as CompiledGraph).run(
      { ...feeds, ...(quantized ? quantized.scales.feeds() : {}) },
      fetches && this.running !== "fp32" ? undefined : fetches,
    );
    if (this.running !== "fp32") this.quantized?.scales.observeRun(out);
    return out;
  }

  /** Ends an evaluation: its observed ranges become the next evaluation's scales. */
  endEvaluation(): void {
    if (this.running === "fp32") return;
    this.quantized?.scales.commit();
    if (this.running === "calibration") this.calibrations++;
  }

  async release(): Promise<void> {
    await this.compiled?.release();
    this.compiled = undefined;
    this.running = undefined;
  }
}
