import { throwIfStopped } from "../errors.js";
import { channelsOf, featureSize, poolsBefore } from "../network/layers.js";
import { type Precision, PrecisionGraph } from "../quantize/precision-graph.js";
import { CompiledGraph, type RuntimeOptions } from "../runtime/session.js";
import { featureGraph, type LayerChoice, type NetworkSpec } from "./graphs.js";
import * as names from "./names.js";
import {
  copyOwnedPlanes,
  cropPlanes,
  ownMask,
  planTiles,
  type Tile,
  type TilePlan,
  validMask,
} from "./tiling.js";

/** An image for a feature pass: the network's input (RGB minus the mean, planar) and its size. */
export interface PassImage {
  x: Float32Array;
  width: number;
  height: number;
}

export interface FeatureResult {
  /** Each content layer's features over the whole image (1 x C x h x w, planar). */
  features: Map<string, Float32Array>;
  /** Each style layer's unnormalised Gram matrix, one per mask slot (one without masks), in float64. */
  grams: Map<string, Float64Array[]>;
}

/**
 * The feature pass over an image: content features and Gram matrices, the two things the targets
 * and the first pass of a tiled evaluation need. Whole (one run, any image size) or tile by tile
 * (one crop size, sums over the tiles): the same numbers, two strategies.
 */
export interface FeaturePass {
  /**
   * `masks`: per mask slot, the slot's mask at each style layer over the whole image (undefined for a
   * slot of ones); omitted when the pass has no slots.
   */
  run(
    image: PassImage,
    want: { features: boolean; grams: boolean },
    masks?: readonly (Map<string, Float32Array> | undefined)[],
    signal?: AbortSignal,
  ): Promise<FeatureResult>;
  /** Ends an evaluation (the int8 scales of the next one come from this one's runs). */
  endEvaluation(): void;
  usePrecision(p: Precision): Promise<void>;
  release(): Promise<void>;
}

export interface PassSpec extends NetworkSpec<LayerChoice> {
  /** Region mask slots at each style layer (0: plain Gram matrices). */
  slots: number;
  runtime?: RuntimeOptions;
}

function fetches(spec: PassSpec, want: { features: boolean; grams: boolean }): string[] {
  const out: string[] = [];
  if (want.features) for (const l of spec.o.contentLayers) out.push(names.featuresName(l));
  if (want.grams)
    for (const l of spec.o.styleLayers) {
      if (spec.slots === 0) out.push(names.gramName(l));
      for (let r = 0; r < spec.slots; r++) out.push(names.gramName(l, r));
    }
  return out;
}

function emptyResult(spec: PassSpec): FeatureResult {
  const slots = Math.max(1, spec.slots);
  return {
    features: new Map(),
    grams: new Map(
      spec.o.styleLayers.map((l) => [
        l,
        Array.from({ length: slots }, () => new Float64Array(channelsOf(l) ** 2)),
      ]),
    ),
  };
}

function addGrams(into: FeatureResult, spec: PassSpec, out: names.Feeds): void {
  for (const l of spec.o.styleLayers) {
    const sums = into.grams.get(l) as Float64Array[];
    sums.forEach((sum, r) => {
      const part = out[names.gramName(l, spec.slots === 0 ? undefined : r)]?.data as Float32Array;
      for (let k = 0; k < sum.length; k++) sum[k] = (sum[k] as number) + (part[k] as number);
    });
  }
}

/** The whole image in one run, with a graph of symbolic size that serves images of any size. */
export class WholePass implements FeaturePass {
  private constructor(
    private readonly spec: PassSpec,
    private readonly compiled: CompiledGraph,
  ) {}

  static async create(spec: PassSpec): Promise<WholePass> {
    return new WholePass(
      spec,
      await CompiledGraph.compile(featureGraph(spec, { kind: "any" }, spec.slots), spec.runtime),
    );
  }

  async run(
    image: PassImage,
    want: { features: boolean; grams: boolean },
    masks?: readonly (Map<string, Float32Array> | undefined)[],
    signal?: AbortSignal,
  ): Promise<FeatureResult> {
    throwIfStopped(signal);
    const { spec } = this;
    const feeds: names.Feeds = { [names.X]: { data: image.x, dims: [1, 3, image.height, image.width] } };
    for (let r = 0; r < spec.slots; r++)
      for (const l of spec.o.styleLayers) {
        const m = masks?.[r]?.get(l);
        const [h, w] = m ? featureSize(image.height, image.width, l) : [1, 1];
        feeds[names.regionMask(l, r)] = { data: m ?? Float32Array.of(1), dims: [1, 1, h, w] };
      }
    const out = await this.compiled.run(feeds, fetches(spec, want));
    const result = emptyResult(spec);
    if (want.features)
      for (const l of spec.o.contentLayers)
        result.features.set(l, out[names.featuresName(l)]?.data as Float32Array);
    if (want.grams) addGrams(result, spec, out);
    return result;
  }

  endEvaluation(): void {}

  async usePrecision(p: Precision): Promise<void> {
    if (p !== "fp32") throw new Error("the whole feature pass runs in float32");
  }

  async release(): Promise<void> {
    await this.compiled.release();
  }
}

/** The masks a tile's crop reads at each pooling level: inside the picture, and owned by the tile. */
export function tileMaskFeeds(
  plan: TilePlan,
  tile: Tile,
  levels: { valid: number[]; own: number[] },
): names.Feeds {
  const feeds: names.Feeds = {};
  const dims = (level: number) => [1, 1, plan.cropHeight / 2 ** level, plan.cropWidth / 2 ** level];
  for (const k of levels.valid)
    feeds[names.validMaskInput(k)] = { data: validMask(plan, tile, k), dims: dims(k) };
  for (const k of levels.own) feeds[names.ownMaskInput(k)] = { data: ownMask(plan, tile, k), dims: dims(k) };
  return feeds;
}

/** The pooling levels whose `valid_<k>` and `own_<k>` masks a graph reads. */
export function maskLevels(inputs: readonly { name: string }[]): { valid: number[]; own: number[] } {
  const levels = (prefix: string) =>
    inputs.filter((t) => t.name.startsWith(prefix)).map((t) => Number(t.name.slice(prefix.length)));
  return { valid: levels("valid_"), own: levels("own_") };
}

/** A crop of a layer's region mask (a whole-picture mask at the layer) for one tile; ones for a slot of ones. */
export function cropLayerMask(
  mask: Float32Array | undefined,
  plan: TilePlan,
  tile: Tile,
  l: string,
  out: Float32Array,
): Float32Array {
  const s = 2 ** poolsBefore(l);
  if (mask === undefined) return out.fill(1);
  const [h, w] = featureSize(plan.height, plan.width, l);
  return cropPlanes(mask, 1, h, w, tile.top / s, tile.left / s, plan.cropHeight / s, plan.cropWidth / s, out);
}

/** Tile by tile: every crop of one size, so that one graph serves every tile of every image. */
export class TiledPass implements FeaturePass {
  private readonly levels: { valid: number[]; own: number[] };

  private constructor(
    private readonly spec: PassSpec,
    readonly crop: { cropWidth: number; cropHeight: number },
    readonly halo: number,
    private readonly graph: PrecisionGraph,
    inputs: readonly { name: string }[],
  ) {
    this.levels = maskLevels(inputs);
  }

  static create(
    spec: PassSpec,
    crop: { cropWidth: number; cropHeight: number },
    halo: number,
    precision: Precision = "fp32",
  ): TiledPass {
    const g = featureGraph(spec, { kind: "crop", ...crop, picture: { width: 0, height: 0 } }, spec.slots);
    return new TiledPass(spec, crop, halo, new PrecisionGraph(g, spec.runtime, precision), g.inputs);
  }

  /** The tiles of an image of this size. */
  plan(width: number, height: number): TilePlan {
    return planTiles(width, height, this.crop, this.halo);
  }

  async run(
    image: PassImage,
    want: { features: boolean; grams: boolean },
    masks?: readonly (Map<string, Float32Array> | undefined)[],
    signal?: AbortSignal,
  ): Promise<FeatureResult> {
    const { spec } = this;
    const plan = this.plan(image.width, image.height);
    const { cropWidth: cw, cropHeight: ch } = plan;
    const result = emptyResult(spec);
    if (want.features)
      for (const l of spec.o.contentLayers) {
        const [h, w] = featureSize(image.height, image.width, l);
        result.features.set(l, new Float32Array(channelsOf(l) * h * w));
      }
    const xCrop = new Float32Array(3 * ch * cw);
    for (const tile of plan.tiles) {
      throwIfStopped(signal);
      const feeds: names.Feeds = {
        ...tileMaskFeeds(plan, tile, this.levels),
        [names.X]: {
          data: cropPlanes(image.x, 3, image.height, image.width, tile.top, tile.left, ch, cw, xCrop),
          dims: [1, 3, ch, cw],
        },
      };
      for (let r = 0; r < spec.slots; r++)
        for (const l of spec.o.styleLayers) {
          const s = 2 ** poolsBefore(l);
          const data = cropLayerMask(
            masks?.[r]?.get(l),
            plan,
            tile,
            l,
            new Float32Array((ch * cw) / (s * s)),
          );
          feeds[names.regionMask(l, r)] = { data, dims: [1, 1, ch / s, cw / s] };
        }
      const out = await this.graph.run(feeds, fetches(spec, want));
      if (want.features)
        for (const l of spec.o.contentLayers)
          copyOwnedPlanes(
            out[names.featuresName(l)]?.data as Float32Array,
            channelsOf(l),
            plan,
            tile,
            poolsBefore(l),
            result.features.get(l) as Float32Array,
          );
      if (want.grams) addGrams(result, spec, out);
    }
    return result;
  }

  endEvaluation(): void {
    this.graph.endEvaluation();
  }

  usePrecision(p: Precision): Promise<void> {
    return this.graph.usePrecision(p);
  }

  release(): Promise<void> {
    return this.graph.release();
  }
}
