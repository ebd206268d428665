import { throwIfStopped } from "../errors.js";
import { countFlops } from "../graph/flops.js";
import { channelsOf, featureSize } from "../network/layers.js";
import { type Precision, PrecisionGraph } from "../quantize/precision-graph.js";
import type { Evaluation, Evaluator, EvaluatorInit } from "./evaluator.js";
import { scalarOf } from "./evaluator.js";
import { objectiveGraph } from "./graphs.js";
import * as names from "./names.js";
import { regionFeeds, regionTargetFeeds } from "./regions.js";
import { computeTargets } from "./targets.js";

/**
 * The whole picture in one onnxruntime call per evaluation: every term and the gradient. On the CPU
 * the targets are fed as inputs, which costs nothing there and keeps the graph small; on a GPU they
 * are constants inside the graph, so that they stay in its memory and only x goes in.
 */
export class WholeEvaluator implements Evaluator {
  private constructor(
    private readonly init: EvaluatorInit,
    private readonly graph: PrecisionGraph,
    private readonly feeds: names.Feeds,
    readonly flops: number,
  ) {}

  static async create(init: EvaluatorInit): Promise<WholeEvaluator> {
    const { o, content } = init;
    const { width, height } = content;
    const gpu = init.runtime?.device === "webgpu";
    const targets = await computeTargets({
      weights: init.weights,
      content,
      styles: init.styles,
      styleBlend: o.styleBlend,
      contentLayers: o.contentLayers,
      styleLayers: o.styleLayers,
      pooling: o.pooling,
      ...(init.runtime === undefined ? {} : { runtime: init.runtime }),
      ...(init.masks ? { regions: { styleMasks: init.styleMasks ?? [] } } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
      ...(init.cache ? { cache: init.cache } : {}),
    });
    const feeds: names.Feeds = {};
    for (const [l, data] of targets.content) {
      const [h, w] = featureSize(height, width, l);
      feeds[names.contentTarget(l)] = { data, dims: [1, channelsOf(l), h, w] };
    }
    for (const [l, data] of targets.style)
      feeds[names.styleTarget(l)] = { data, dims: [channelsOf(l), channelsOf(l)] };
    if (init.temporal) {
      feeds[names.TEMPORAL_TARGET] = { data: init.temporal.target, dims: [1, 3, height, width] };
      feeds[names.TEMPORAL_CERTAINTY] = { data: init.temporal.certainty, dims: [1, 1, height, width] };
    }
    if (init.masks)
      Object.assign(feeds, regionFeeds(init.masks, o.styleLayers), regionTargetFeeds(targets.regions ?? []));
    const g = objectiveGraph(
      { weights: init.weights, o, poolIndices: !gpu },
      { kind: "whole", width, height },
      {
        regions: init.masks !== undefined,
        temporal: init.temporal !== undefined,
        ...(gpu ? { constants: feeds } : {}),
      },
    );
    throwIfStopped(init.signal);
    const graph = new PrecisionGraph(g, init.runtime, init.precision);
    await graph.prepare();
    return new WholeEvaluator(init, graph, gpu ? {} : feeds, countFlops(g));
  }

  usePrecision(precision: Precision): Promise<void> {
    return this.graph.usePrecision(precision);
  }

  async evaluate(x: Float32Array): Promise<Evaluation> {
    const { width, height } = this.init.content;
    const out = await this.graph.run({ ...this.feeds, [names.X]: { data: x, dims: [1, 3, height, width] } });
    this.graph.endEvaluation();
    const { o } = this.init;
    const content: Record<string, number> = {};
    for (const l of o.contentLayers) content[l] = scalarOf(out, names.contentTerm(l));
    const style: Record<string, number> = {};
    for (const l of o.styleLayers) style[l] = scalarOf(out, names.styleTerm(l));
    const gradient = out[names.GRADIENT]?.data;
    if (!gradient) throw new Error("the objective graph returned no gradient");
    return {
      total: scalarOf(out, names.TOTAL),
      content,
      style,
      tv: scalarOf(out, names.TV),
      ...(this.init.temporal ? { temporal: scalarOf(out, names.TEMPORAL) } : {}),
      gradient,
    };
  }

  release(): Promise<void> {
    return this.graph.release();
  }
}
