import { message, opt, UsageError } from "../errors.js";
import type { RgbImage } from "../image/image.js";
import type { Mask } from "../image/masks.js";
import type { VggWeights } from "../network/weights.js";
import type { Precision } from "../quantize/precision-graph.js";
import type { RuntimeOptions } from "../runtime/session.js";
import type { Evaluation, Evaluator, LossTerms, TemporalTarget } from "./evaluator.js";
import { type ObjectiveOptions, type ResolvedObjective, resolveObjective } from "./options.js";
import { regionMasks } from "./regions.js";
import { checkImageSize } from "./size.js";
import type { TargetCache } from "./targets.js";
import { TiledEvaluator } from "./tiled.js";
import { checkTileEdge } from "./tiling.js";
import { WholeEvaluator } from "./whole.js";

export type { Evaluation, LossTerms, Precision, TemporalTarget };

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
   * Video: the temporal term's target and certainty at the content's size (src/losses/temporal.ts),
   * weighted by the options' temporalWeight. Evaluated whole or in tiles alike.
   */
  temporal?: TemporalTarget;
  /** Style Gram matrices kept across objectives (a batch's, a video's): computed once per image and size. */
  cache?: TargetCache;
  /**
   * Stops the set-up (the targets' passes, each tile's, the compilation) with a StoppedError; a pass
   * already running ends first, so a cancel takes effect within one forward pass.
   */
  signal?: AbortSignal;
}

/**
 * The style-transfer objective for one image size and one set of options, built once and evaluated
 * many times. How it is evaluated is a strategy (src/objective/evaluator.ts): the whole picture in
 * one onnxruntime call that returns every term and the gradient, or tile by tile in memory bounded
 * by the tile; either in float32 or int8.
 */
export class Objective {
  private wanted: Precision;

  private constructor(
    readonly width: number,
    readonly height: number,
    readonly options: ResolvedObjective,
    private readonly evaluator: Evaluator,
    private readonly runtime: RuntimeOptions | undefined,
    precision: Precision,
  ) {
    this.wanted = precision;
  }

  /** The tiles of a tiled objective (their count and crop size), or undefined when it is evaluated whole. */
  get tiling(): { tiles: number; tile: number; cropWidth: number; cropHeight: number } | undefined {
    const e = this.evaluator;
    if (!(e instanceof TiledEvaluator)) return undefined;
    return {
      tiles: e.plan.tiles.length,
      tile: e.tile,
      cropWidth: e.plan.cropWidth,
      cropHeight: e.plan.cropHeight,
    };
  }

  /** FLOPs of one evaluation (Conv and MatMul), counted from the graphs. */
  get flops(): number {
    return this.evaluator.flops;
  }

  static async create(init: ObjectiveInit): Promise<Objective> {
    const o = resolveObjective(init.options ?? {}, init.styles.length);
    const { width, height } = init.content;
    checkImageSize("content image", init.content, [...o.contentLayers, ...o.styleLayers]);
    const precision = init.precision ?? "fp32";
    if (init.runtime?.device === "webgpu" && precision !== "fp32") throw int8OnGpuError();
    const masks = regionMasks(init);
    const tile = init.tile === undefined ? undefined : checkTileEdge(init.tile);
    const common = {
      weights: init.weights,
      o,
      content: init.content,
      styles: init.styles,
      precision,
      ...(init.runtime === undefined ? {} : { runtime: init.runtime }),
      ...(masks ? { masks } : {}),
      ...(init.styleMasks ? { styleMasks: init.styleMasks } : {}),
      ...(init.temporal ? { temporal: checkTemporal(init.temporal, width, height) } : {}),
      ...(init.cache ? { cache: init.cache } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    };
    const evaluator =
      tile !== undefined && (width > tile || height > tile)
        ? await TiledEvaluator.create({ ...common, tile })
        : await WholeEvaluator.create(common);
    return new Objective(width, height, o, evaluator, init.runtime, precision);
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
    this.wanted = precision;
    await this.evaluator.usePrecision(precision);
  }

  async evaluate(x: Float32Array): Promise<Evaluation> {
    if (x.length !== this.size) {
      throw new Error(`objective is for ${this.width}x${this.height} images; x has ${x.length} values`);
    }
    return this.evaluator.evaluate(x);
  }

  async release(): Promise<void> {
    await this.evaluator.release();
  }
}

/** The temporal inputs must have the picture's size: a wrong length would read past them in the graph. */
function checkTemporal(t: TemporalTarget, width: number, height: number): TemporalTarget {
  const plane = width * height;
  if (t.target.length !== 3 * plane || t.certainty.length !== plane)
    throw new UsageError(
      `the temporal target must have the content's size ${width}x${height}: ${3 * plane} values and ${plane} certainties, got ${t.target.length} and ${t.certainty.length}`,
      { option: "temporal" },
    );
  return t;
}

function int8OnGpuError(): UsageError {
  return new UsageError(
    message`int8 precision runs on the CPU only (WebGPU has no int8 convolution): use ${opt("device", "cpu")}, or ${opt("precision", "fp32")} on the GPU`,
    { option: "precision" },
  );
}
