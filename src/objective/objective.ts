import { gradient } from "../autodiff/backward.js";
import { StylegramError, throwIfStopped, UsageError } from "../errors.js";
import { Graph, type Tensor } from "../graph/graph.js";
import type { RgbImage } from "../image/image.js";
import type { Mask } from "../image/masks.js";
import { contentLoss } from "../losses/content.js";
import { guidedStyleLoss } from "../losses/guided.js";
import { styleLoss } from "../losses/style.js";
import { tvLoss } from "../losses/tv.js";
import { channelsOf, deepest, featureSize } from "../network/layers.js";
import { buildVgg19 } from "../network/vgg19.js";
import type { VggWeights } from "../network/weights.js";
import { type QuantizedGraph, quantizeInt8, withObservers } from "../quantize/int8.js";
import { DelayedScales } from "../quantize/scales.js";
import { CompiledGraph, type RuntimeOptions } from "../runtime/session.js";
import { type Feeds, regionFeeds, regionInputs, regionMasks, regionTargetFeeds } from "./masks.js";
import { type ObjectiveOptions, type ResolvedObjective, resolveObjective } from "./options.js";
import { checkImageSize } from "./size.js";
import { computeTargets, type Targets } from "./targets.js";
import { TiledEvaluator } from "./tiled.js";
import { checkTileEdge } from "./tiling.js";

/** Every term unweighted, and the weighted total. */
export interface LossTerms {
  total: number;
  content: Record<string, number>;
  style: Record<string, number>;
  tv: number;
}

export interface Evaluation extends LossTerms {
  /** d(total)/d(x), same layout as x (1 x 3 x H x W, NCHW). */
  gradient: Float32Array;
}

export interface ObjectiveInit {
  weights: VggWeights;
  /** The content image; its size is the size of the optimised image. */
  content: RgbImage;
  /** One or more style images, of any size. */
  styles: readonly RgbImage[];
  options?: ObjectiveOptions;
  runtime?: RuntimeOptions;
  /** Arithmetic of the convolutions (default "fp32"); it can be changed later with usePrecision(). */
  precision?: Precision;
  /**
   * Evaluate tile by tile, with owned tiles of this edge in pixels (a multiple of 16), in memory
   * bounded by the tile; the terms and gradient equal the untiled ones (src/objective/tiled.ts).
   * A picture no larger than the tile is evaluated whole. Float32 only.
   */
  tile?: number;
  /**
   * Styles by region: one mask per style image, each of the content image's size. Style image r is
   * matched where mask r is white, by guided Gram matrices (src/losses/guided.ts), each region to its
   * own style image instead of a blend; `styleBlend` then weighs the regions' terms (equal: 1 each).
   */
  masks?: readonly Mask[];
  /**
   * Per style image, the part of it its style is taken from (a mask of the style image's size), or
   * undefined for all of it. Without `masks` each style then applies to the whole picture.
   */
  styleMasks?: readonly (Mask | undefined)[];
  /**
   * Stops the set-up (the targets' passes, each tile's, the compilation) with a StoppedError; a pass
   * already running ends first, so a cancel takes effect within one forward pass.
   */
  signal?: AbortSignal;
}

/**
 * Evaluations of an int8 objective that run in float32, returning their exact values, while the graph
 * measures the ranges the int8 scales start from. Two, because L-BFGS's first step is tiny: two int8
 * gradients so close together differ by rounding noise, not curvature, and the optimiser then crawls
 * (measured: three wasted evaluations with one).
 */
const CALIBRATION_EVALUATIONS = 2;

/**
 * "fp32": every operation in float32, exact. "int8": the convolutions of the forward and the
 * input-gradient pass in int8 (src/quantize/int8.ts), losses and sums in float32; the first
 * evaluation runs in float32 to measure the tensors' ranges.
 */
export type Precision = "fp32" | "int8";

/** How the graph is built for a device: the same objective, with what that device's kernels can run. */
interface BuildFor {
  /** MaxPool's Indices output for the gradient (the CPU's fast path; WebGPU has none). */
  poolIndices: boolean;
  /**
   * The targets as constants inside the graph instead of inputs fed at every call: on a GPU they then
   * stay in its memory, and only x goes in and the terms and gradient come out.
   */
  targets?: Targets;
  /**
   * Styles by region (src/objective/masks.ts has the inputs' names): the weight of each region's term,
   * and on a GPU the masks, normalisers and targets as constants.
   */
  regions?: { weights: readonly number[]; constants?: Feeds };
}

/** The objective graph: VGG19 on x, every loss term, the weighted total and its gradient. */
function buildObjectiveGraph(
  weights: VggWeights,
  width: number,
  height: number,
  o: ResolvedObjective,
  build: BuildFor,
): Graph {
  const g = new Graph();
  const x = g.input("x", [1, 3, height, width]);
  const layers = [...o.contentLayers, ...o.styleLayers];
  const acts =
    layers.length > 0
      ? buildVgg19(g, x, weights, {
          pooling: o.pooling,
          upTo: deepest(layers),
          differentiable: true,
          poolIndices: build.poolIndices,
        })
      : new Map<string, Tensor>();
  const target = (name: string, data: Float32Array | undefined, shape: number[]) =>
    data === undefined ? g.input(name, shape) : g.constant(data, shape, name);
  const weighted: Tensor[] = [];
  const term = (t: Tensor, name: string, coefficient: number) => {
    g.output(t, name);
    weighted.push(g.op1("Mul", [t, g.scalar(coefficient)]));
  };
  o.contentLayers.forEach((l, i) => {
    const [h, w] = featureSize(height, width, l);
    const t = target(`content_target_${l}`, build.targets?.content.get(l), [1, channelsOf(l), h, w]);
    term(
      contentLoss(g, acts.get(l) as Tensor, t),
      `content_${l}`,
      o.contentWeight * (o.contentLayerWeights[i] as number),
    );
  });
  o.styleLayers.forEach((l, i) => {
    const c = channelsOf(l);
    const features = acts.get(l) as Tensor;
    const loss = build.regions
      ? guidedStyleLoss(
          g,
          features,
          regionInputs(g, l, { width, height }, build.regions.weights, build.regions.constants),
        )
      : styleLoss(g, features, target(`style_target_${l}`, build.targets?.style.get(l), [c, c]));
    term(loss, `style_${l}`, o.styleWeight * (o.styleLayerWeights[i] as number));
  });
  term(tvLoss(g, x), "tv", o.tvWeight);
  let total = weighted[0] as Tensor;
  for (const t of weighted.slice(1)) total = g.op1("Add", [total, t]);
  g.output(total, "total");
  g.output(gradient(g, g.get("total"), x), "gradient");
  return g;
}

/**
 * The style-transfer objective for one image size and one set of options, built
 * once and evaluated many times: each evaluate() is one onnxruntime call that
 * returns every term and the gradient.
 */
export class Objective {
  private compiled: CompiledGraph | undefined;
  /** Which graph `compiled` holds. */
  private running: "fp32" | "int8" | "calibration" | undefined;
  private quantized: { graph: QuantizedGraph; scales: DelayedScales } | undefined;
  private calibrations = 0;

  private constructor(
    readonly width: number,
    readonly height: number,
    readonly options: ResolvedObjective,
    /** The untiled graph, or undefined when the objective is evaluated tile by tile. */
    private readonly graph: Graph | undefined,
    private readonly runtime: RuntimeOptions | undefined,
    private readonly targetFeeds: Feeds,
    private wanted: Precision,
    /** FLOPs of one evaluation (Conv and MatMul), counted from the graph. */
    readonly flops: number,
    private readonly tiled?: TiledEvaluator,
  ) {}

  /** The tiles of a tiled objective (their count and crop size), or undefined when it is evaluated whole. */
  get tiling(): { tiles: number; tile: number; cropWidth: number; cropHeight: number } | undefined {
    if (!this.tiled) return undefined;
    const { plan } = this.tiled;
    return {
      tiles: plan.tiles.length,
      tile: this.tiled.tile,
      cropWidth: plan.cropWidth,
      cropHeight: plan.cropHeight,
    };
  }

  static async create(init: ObjectiveInit): Promise<Objective> {
    const o = resolveObjective(init.options ?? {}, init.styles.length);
    const { width, height } = init.content;
    checkImageSize("content image", init.content, [...o.contentLayers, ...o.styleLayers]);
    const gpu = init.runtime?.device === "webgpu";
    const precision = init.precision ?? "fp32";
    if (gpu && precision !== "fp32") throw int8OnGpuError();
    const masks = regionMasks(init);
    const tile = init.tile === undefined ? undefined : checkTileEdge(init.tile);
    if (tile !== undefined && (width > tile || height > tile)) {
      if (precision !== "fp32") throw int8TiledError();
      if (masks || init.styleMasks?.some((m) => m !== undefined)) throw masksTiledError();
      const tiled = await TiledEvaluator.create({
        weights: init.weights,
        o,
        content: init.content,
        styles: init.styles,
        tile,
        ...(init.runtime === undefined ? {} : { runtime: init.runtime }),
        ...(init.signal ? { signal: init.signal } : {}),
        countFlops,
      });
      return new Objective(width, height, o, undefined, init.runtime, {}, precision, tiled.flops, tiled);
    }
    const targets: Targets = await computeTargets({
      weights: init.weights,
      content: init.content,
      styles: init.styles,
      styleBlend: o.styleBlend,
      contentLayers: o.contentLayers,
      styleLayers: o.styleLayers,
      pooling: o.pooling,
      ...(init.runtime === undefined ? {} : { runtime: init.runtime }),
      ...(masks ? { regions: { styleMasks: init.styleMasks ?? [] } } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    });
    // Styles by region: the masks at each style layer, their normalisers and each region's targets.
    const regionData: Feeds = masks
      ? { ...regionFeeds(masks, o.styleLayers), ...regionTargetFeeds(targets.regions ?? []) }
      : {};
    const g = buildObjectiveGraph(init.weights, width, height, o, {
      poolIndices: !gpu,
      ...(gpu ? { targets } : {}),
      ...(masks
        ? {
            regions: {
              weights: o.styleBlend.map((b) => b * masks.length),
              ...(gpu ? { constants: regionData } : {}),
            },
          }
        : {}),
    });
    // On the CPU the targets are fed as inputs, which costs nothing there and keeps the graph small.
    const feeds: Feeds = {};
    if (!gpu) {
      for (const [l, data] of targets.content) {
        const [h, w] = featureSize(height, width, l);
        feeds[`content_target_${l}`] = { data, dims: [1, channelsOf(l), h, w] };
      }
      for (const [l, data] of targets.style)
        feeds[`style_target_${l}`] = { data, dims: [channelsOf(l), channelsOf(l)] };
      Object.assign(feeds, regionData);
    }
    const objective = new Objective(width, height, o, g, init.runtime, feeds, precision, countFlops(g));
    throwIfStopped(init.signal);
    await objective.prepare();
    return objective;
  }

  /** Number of values in x: 3 * height * width. */
  get size(): number {
    return 3 * this.width * this.height;
  }

  /** The arithmetic of the next evaluations. */
  get precision(): Precision {
    return this.wanted;
  }

  /** Switches the arithmetic of the following evaluations (the int8 scales are kept across switches). */
  async usePrecision(precision: Precision): Promise<void> {
    if (precision !== "fp32" && this.runtime?.device === "webgpu") throw int8OnGpuError();
    if (precision !== "fp32" && this.tiled) throw int8TiledError();
    this.wanted = precision;
    await this.prepare();
  }

  /** Compiles the graph the next evaluation needs, releasing the one it replaces. */
  private async prepare(): Promise<void> {
    if (!this.graph) return;
    let next: "fp32" | "int8" | "calibration" = "fp32";
    if (this.wanted === "int8") {
      this.quantized ??= (() => {
        const graph = quantizeInt8(this.graph as Graph);
        return { graph, scales: new DelayedScales(graph.points) };
      })();
      next =
        this.quantized.scales.ready && this.calibrations >= CALIBRATION_EVALUATIONS ? "int8" : "calibration";
    }
    if (next === this.running && this.compiled) return;
    // One session at a time: two would hold two sets of activation buffers.
    await this.compiled?.release();
    this.compiled = undefined;
    const graph =
      next === "fp32"
        ? (this.graph as Graph)
        : next === "calibration"
          ? withObservers(this.graph as Graph, this.quantized?.graph.points ?? [])
          : (this.quantized?.graph.graph as Graph);
    this.compiled = await CompiledGraph.compile(graph, this.runtime);
    this.running = next;
  }

  async evaluate(x: Float32Array): Promise<Evaluation> {
    if (x.length !== this.size) {
      throw new StylegramError(
        `objective is for ${this.width}x${this.height} images; x has ${x.length} values`,
      );
    }
    if (this.tiled) return this.tiled.evaluate(x);
    await this.prepare();
    const quantized = this.running === "int8" ? this.quantized : undefined;
    const out = await (this.compiled as CompiledGraph).run({
      ...this.feeds(x),
      ...(quantized ? quantized.scales.feeds() : {}),
    });
    if (this.running !== "fp32") this.quantized?.scales.observe(out);
    if (this.running === "calibration") this.calibrations++;
    const read = (name: string): Float32Array => {
      const t = out[name];
      if (!t) throw new Error(`objective graph returned no ${name}`);
      return t.data;
    };
    const scalar = (name: string) => read(name)[0] as number;
    const content: Record<string, number> = {};
    for (const l of this.options.contentLayers) content[l] = scalar(`content_${l}`);
    const style: Record<string, number> = {};
    for (const l of this.options.styleLayers) style[l] = scalar(`style_${l}`);
    return {
      total: scalar("total"),
      content,
      style,
      tv: scalar("tv"),
      gradient: out.gradient?.data as Float32Array,
    };
  }

  private feeds(x: Float32Array): Feeds {
    return { ...this.targetFeeds, x: { data: x, dims: [1, 3, this.height, this.width] } };
  }

  async release(): Promise<void> {
    await this.tiled?.release();
    await this.compiled?.release();
    this.compiled = undefined;
    this.running = undefined;
  }
}

function masksTiledError(): UsageError {
  return new UsageError(
    "styles by region (--mask, --style-mask) do not run tiled yet (pictures larger than the tile, or than memory allows whole): use a smaller --size, or more --max-memory",
  );
}

function int8TiledError(): UsageError {
  return new UsageError(
    "int8 precision does not run tiled yet (pictures larger than the tile, or than memory allows whole): use --precision fp32 for this size",
  );
}

function int8OnGpuError(): UsageError {
  return new UsageError(
    "int8 precision runs on the CPU only (WebGPU has no int8 convolution): use --device cpu, or --precision fp32 on the GPU",
  );
}

/** Multiply-adds x 2 of every Conv and MatMul in the graph, forward and backward. */
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
