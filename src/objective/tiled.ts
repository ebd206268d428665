import { gradient } from "../autodiff/backward.js";
import { throwIfStopped } from "../errors.js";
import { Graph, type Tensor } from "../graph/graph.js";
import { type RgbImage, toNetworkInput } from "../image/image.js";
import { gramUnnormalised } from "../losses/style.js";
import { channelsOf, deepest, featureSize, poolsBefore } from "../network/layers.js";
import { buildVgg19 } from "../network/vgg19.js";
import type { VggWeights } from "../network/weights.js";
import { CompiledGraph, type RuntimeOptions } from "../runtime/session.js";
import type { ResolvedObjective } from "./options.js";
import {
  addCropPlanes,
  copyOwnedPlanes,
  cropPlanes,
  cropSize,
  haloFor,
  levelSize,
  ownMask,
  planTiles,
  type Tile,
  type TilePlan,
  validMask,
} from "./tiling.js";

/**
 * The objective evaluated tile by tile, exactly, in memory bounded by the tile (see tiling.ts for
 * how the picture is cut). Content and total variation are sums over owned positions; a style
 * layer's Gram matrix is the sum over tiles of F_t F_t^T, so an evaluation is two passes:
 *   1. forward only, per tile: the owned part's Gram matrices, summed into the picture's;
 *   2. per tile, forward and backward of content + TV + <dL/dG, F_t F_t^T>, with dL/dG computed from
 *      the picture's Gram matrices and fed in, whose gradient is the tile's share of the picture's.
 * The targets are computed with the first pass's graph too: the content features tile by tile, the
 * style Gram matrices summed over the style image's own tiles.
 */

/** Names of the graphs' inputs and outputs, in one place. */
const valid = (level: number) => `valid_${level}`;
const own = (level: number) => `own_${level}`;
const gramOut = (l: string) => `gram_${l}`;
const featOut = (l: string) => `feat_${l}`;
const contentTarget = (l: string) => `content_target_${l}`;
const dGram = (l: string) => `dgram_${l}`;
const contentOut = (l: string) => `content_${l}`;

interface TileGraph {
  graph: Graph;
  /** Pooling levels whose validity and ownership masks the graph reads. */
  validLevels: number[];
  ownLevels: number[];
}

interface Crop {
  cropWidth: number;
  cropHeight: number;
}

/** The network on one crop, with every convolution's input masked to the picture. */
function tileNetwork(
  g: Graph,
  weights: VggWeights,
  o: ResolvedObjective,
  crop: Crop,
  differentiable: boolean,
  poolIndices: boolean,
) {
  const x = g.input("x", [1, 3, crop.cropHeight, crop.cropWidth]);
  const validLevels: number[] = [];
  const ownLevels: number[] = [];
  const inputs = new Map<string, Tensor>();
  const mask = (name: string, level: number, list: number[]) => {
    let t = inputs.get(name);
    if (!t) {
      const s = 2 ** level;
      t = g.input(name, [1, 1, crop.cropHeight / s, crop.cropWidth / s]);
      inputs.set(name, t);
      list.push(level);
    }
    return t;
  };
  const layers = [...o.contentLayers, ...o.styleLayers];
  const acts = buildVgg19(g, x, weights, {
    pooling: o.pooling,
    upTo: deepest(layers),
    differentiable,
    poolIndices,
    maskInput: (level, h) => g.op1("Mul", [h, mask(valid(level), level, validLevels)]),
  });
  const owned = (l: string) => {
    const level = poolsBefore(l);
    return g.op1("Mul", [acts.get(l) as Tensor, mask(own(level), level, ownLevels)]);
  };
  return {
    x,
    acts,
    owned,
    validMask: (level: number) => mask(valid(level), level, validLevels),
    ownMask: (level: number) => mask(own(level), level, ownLevels),
    validLevels,
    ownLevels,
  };
}

/** Pass 1 and the targets: each style layer's Gram matrix of the owned part, each content layer's features. */
function forwardGraph(weights: VggWeights, o: ResolvedObjective, crop: Crop): TileGraph {
  const g = new Graph();
  const net = tileNetwork(g, weights, o, crop, false, false);
  for (const l of o.styleLayers) g.output(gramUnnormalised(g, net.owned(l)), gramOut(l));
  for (const l of o.contentLayers) g.output(net.acts.get(l) as Tensor, featOut(l));
  return { graph: g, validLevels: net.validLevels, ownLevels: net.ownLevels };
}

/**
 * Pass 2: the tile's content and TV terms (normalised by the picture's sizes, so that they add up)
 * and the gradient of content + TV + sum over style layers of <dL/dG, G_tile>.
 */
function backwardGraph(
  weights: VggWeights,
  o: ResolvedObjective,
  crop: Crop,
  picture: { width: number; height: number },
  poolIndices: boolean,
): TileGraph {
  const g = new Graph();
  const net = tileNetwork(g, weights, o, crop, true, poolIndices);
  const weighted: Tensor[] = [];
  const sumSquares = (t: Tensor) => g.op1("ReduceSum", [g.op1("Mul", [t, t])], { keepdims: 0 });
  o.contentLayers.forEach((l, i) => {
    const c = channelsOf(l);
    const [h, w] = featureSize(picture.height, picture.width, l);
    const [ch, cw] = [crop.cropHeight / 2 ** poolsBefore(l), crop.cropWidth / 2 ** poolsBefore(l)];
    const target = g.input(contentTarget(l), [1, c, ch, cw]);
    const diff = g.op1("Mul", [
      g.op1("Sub", [net.acts.get(l) as Tensor, target]),
      net.ownMask(poolsBefore(l)),
    ]);
    const term = g.op1("Mul", [sumSquares(diff), g.scalar(1 / (c * h * w))]);
    g.output(term, contentOut(l));
    weighted.push(g.op1("Mul", [term, g.scalar(o.contentWeight * (o.contentLayerWeights[i] as number))]));
  });
  for (const l of o.styleLayers) {
    const c = channelsOf(l);
    const d = g.input(dGram(l), [c, c]);
    const gram = gramUnnormalised(g, net.owned(l));
    weighted.push(g.op1("ReduceSum", [g.op1("Mul", [gram, d])], { keepdims: 0 }));
  }
  // TV: the differences between each owned pixel and its right (lower) neighbour inside the picture.
  const x = net.x;
  const { cropHeight: ch, cropWidth: cw } = crop;
  const slice = (t: Tensor, axis: number, from: number, to: number) =>
    g.op1("Slice", [t, g.ints([from]), g.ints([to]), g.ints([axis])]);
  const pairs = (axis: number, n: number) => {
    const diff = g.op1("Sub", [slice(x, axis, 1, n), slice(x, axis, 0, n - 1)]);
    const m = g.op1("Mul", [slice(net.ownMask(0), axis, 0, n - 1), slice(net.validMask(0), axis, 1, n)]);
    return sumSquares(g.op1("Mul", [diff, m]));
  };
  const tvSum = g.op1("Add", [pairs(3, cw), pairs(2, ch)]);
  const tv = g.op1("Mul", [tvSum, g.scalar(1 / (3 * picture.width * picture.height))]);
  g.output(tv, "tv");
  weighted.push(g.op1("Mul", [tv, g.scalar(o.tvWeight)]));
  let total = weighted[0] as Tensor;
  for (const t of weighted.slice(1)) total = g.op1("Add", [total, t]);
  g.output(total, "partial");
  g.output(gradient(g, total, x), "gradient");
  return { graph: g, validLevels: net.validLevels, ownLevels: net.ownLevels };
}

type Feeds = Record<string, { data: Float32Array; dims: readonly number[] }>;

function maskFeeds(tg: TileGraph, plan: TilePlan, tile: Tile): Feeds {
  const feeds: Feeds = {};
  const dims = (level: number) => [1, 1, plan.cropHeight / 2 ** level, plan.cropWidth / 2 ** level];
  for (const k of tg.validLevels) feeds[valid(k)] = { data: validMask(plan, tile, k), dims: dims(k) };
  for (const k of tg.ownLevels) feeds[own(k)] = { data: ownMask(plan, tile, k), dims: dims(k) };
  return feeds;
}

export interface TiledTerms {
  total: number;
  content: Record<string, number>;
  style: Record<string, number>;
  tv: number;
  gradient: Float32Array;
}

/** The tiled objective of one picture size: the two compiled graphs and the targets. */
export class TiledEvaluator {
  private constructor(
    private readonly o: ResolvedObjective,
    /** The owned tile edge asked for, in pixels. */
    readonly tile: number,
    readonly plan: TilePlan,
    private readonly forward: { compiled: CompiledGraph; tg: TileGraph },
    private readonly backward: { compiled: CompiledGraph; tg: TileGraph },
    private readonly contentTargets: Map<string, Float32Array>,
    private readonly styleTargets: Map<string, Float64Array>,
    /** FLOPs of one evaluation, both passes over every tile. */
    readonly flops: number,
  ) {}

  static async create(args: {
    weights: VggWeights;
    o: ResolvedObjective;
    content: RgbImage;
    styles: readonly RgbImage[];
    /** Owned tile edge in pixels, a multiple of 16. */
    tile: number;
    runtime?: RuntimeOptions;
    countFlops: (g: Graph) => number;
    /** Stops the set-up between two tiles' passes. */
    signal?: AbortSignal;
  }): Promise<TiledEvaluator> {
    const { o, content } = args;
    const halo = haloFor([...o.contentLayers, ...o.styleLayers]);
    const images = [content, ...(o.styleLayers.length > 0 ? args.styles : [])];
    // One crop size for the picture and every style image, so that one graph serves them all.
    const crop = cropSize(
      args.tile,
      halo,
      Math.max(...images.map((i) => i.width)),
      Math.max(...images.map((i) => i.height)),
    );
    const plan = planTiles(content.width, content.height, crop, halo);
    const gpu = args.runtime?.device === "webgpu";
    const fg = forwardGraph(args.weights, o, crop);
    throwIfStopped(args.signal);
    const forward = { compiled: await CompiledGraph.compile(fg.graph, args.runtime), tg: fg };
    let backward: { compiled: CompiledGraph; tg: TileGraph } | undefined;
    try {
      const contentTargets = new Map<string, Float32Array>();
      for (const l of o.contentLayers) {
        const [h, w] = featureSize(content.height, content.width, l);
        contentTargets.set(l, new Float32Array(channelsOf(l) * h * w));
      }
      if (o.contentLayers.length > 0) {
        const x = toNetworkInput(content);
        for (const tile of plan.tiles) {
          throwIfStopped(args.signal);
          const out = await runForward(forward, plan, tile, x, o.contentLayers.map(featOut));
          for (const l of o.contentLayers) {
            const data = out[featOut(l)]?.data as Float32Array;
            copyOwnedPlanes(
              data,
              channelsOf(l),
              plan,
              tile,
              poolsBefore(l),
              contentTargets.get(l) as Float32Array,
            );
          }
        }
      }
      const styleTargets = new Map<string, Float64Array>();
      for (const l of o.styleLayers) styleTargets.set(l, new Float64Array(channelsOf(l) ** 2));
      for (const [i, img] of (o.styleLayers.length > 0 ? args.styles : []).entries()) {
        const grams = await sumGrams(
          forward,
          o,
          planTiles(img.width, img.height, crop, halo),
          toNetworkInput(img),
          args.signal,
        );
        for (const l of o.styleLayers) {
          const [h, w] = featureSize(img.height, img.width, l);
          const scale = (o.styleBlend[i] as number) / (channelsOf(l) * h * w);
          const target = styleTargets.get(l) as Float64Array;
          const gram = grams.get(l) as Float64Array;
          for (let k = 0; k < target.length; k++)
            target[k] = (target[k] as number) + (gram[k] as number) * scale;
        }
      }
      const bg = backwardGraph(args.weights, o, crop, content, !gpu);
      throwIfStopped(args.signal);
      backward = { compiled: await CompiledGraph.compile(bg.graph, args.runtime), tg: bg };
      const flops = plan.tiles.length * (args.countFlops(fg.graph) + args.countFlops(bg.graph));
      return new TiledEvaluator(o, args.tile, plan, forward, backward, contentTargets, styleTargets, flops);
    } catch (e) {
      await forward.compiled.release();
      await backward?.compiled.release();
      throw e;
    }
  }

  async evaluate(x: Float32Array): Promise<TiledTerms> {
    const { o, plan } = this;
    const { width, height, cropWidth: cw, cropHeight: ch } = plan;
    // Pass 1: the picture's Gram matrices, and from them each style term and its gradient dL/dG.
    const grams = await sumGrams(this.forward, o, plan, x);
    const style: Record<string, number> = {};
    const dgrams = new Map<string, Float32Array>();
    o.styleLayers.forEach((l, i) => {
      const c = channelsOf(l);
      const [h, w] = featureSize(height, width, l);
      const norm = 1 / (c * h * w);
      const gram = grams.get(l) as Float64Array;
      const target = this.styleTargets.get(l) as Float64Array;
      const d = new Float32Array(c * c);
      const coefficient = (o.styleWeight * (o.styleLayerWeights[i] as number) * 2 * norm) / (c * c);
      let sum = 0;
      for (let k = 0; k < c * c; k++) {
        const diff = (gram[k] as number) * norm - (target[k] as number);
        sum += diff * diff;
        d[k] = coefficient * diff;
      }
      style[l] = sum / (c * c);
      dgrams.set(l, d);
    });

    // Pass 2: each tile's content and TV terms and its share of the gradient.
    const grad = new Float32Array(3 * width * height);
    const content: Record<string, number> = {};
    for (const l of o.contentLayers) content[l] = 0;
    let tv = 0;
    const xCrop = new Float32Array(3 * ch * cw);
    const targetCrops = new Map(
      o.contentLayers.map((l) => {
        const s = 2 ** poolsBefore(l);
        return [l, new Float32Array((channelsOf(l) * ch * cw) / (s * s))];
      }),
    );
    for (const tile of plan.tiles) {
      const feeds: Feeds = {
        ...maskFeeds(this.backward.tg, plan, tile),
        x: {
          data: cropPlanes(x, 3, height, width, tile.top, tile.left, ch, cw, xCrop),
          dims: [1, 3, ch, cw],
        },
      };
      for (const l of o.contentLayers) {
        const level = poolsBefore(l);
        const s = 2 ** level;
        const c = channelsOf(l);
        feeds[contentTarget(l)] = {
          data: cropPlanes(
            this.contentTargets.get(l) as Float32Array,
            c,
            levelSize(height, level),
            levelSize(width, level),
            tile.top / s,
            tile.left / s,
            ch / s,
            cw / s,
            targetCrops.get(l) as Float32Array,
          ),
          dims: [1, c, ch / s, cw / s],
        };
      }
      for (const l of o.styleLayers) {
        const c = channelsOf(l);
        feeds[dGram(l)] = { data: dgrams.get(l) as Float32Array, dims: [c, c] };
      }
      const out = await this.backward.compiled.run(feeds);
      for (const l of o.contentLayers) content[l] = (content[l] as number) + scalar(out, contentOut(l));
      tv += scalar(out, "tv");
      addCropPlanes(out.gradient?.data as Float32Array, 3, height, width, tile.top, tile.left, ch, cw, grad);
    }

    let total = o.tvWeight * tv;
    o.contentLayers.forEach((l, i) => {
      total += o.contentWeight * (o.contentLayerWeights[i] as number) * (content[l] as number);
    });
    o.styleLayers.forEach((l, i) => {
      total += o.styleWeight * (o.styleLayerWeights[i] as number) * (style[l] as number);
    });
    return { total, content, style, tv, gradient: grad };
  }

  async release(): Promise<void> {
    await this.forward.compiled.release();
    await this.backward.compiled.release();
  }
}

function scalar(out: Feeds, name: string): number {
  const t = out[name];
  if (!t) throw new Error(`tile graph returned no ${name}`);
  return t.data[0] as number;
}

async function runForward(
  forward: { compiled: CompiledGraph; tg: TileGraph },
  plan: TilePlan,
  tile: Tile,
  x: Float32Array,
  fetches: string[],
  xCrop = new Float32Array(3 * plan.cropHeight * plan.cropWidth),
) {
  const { width, height, cropWidth: cw, cropHeight: ch } = plan;
  return forward.compiled.run(
    {
      ...maskFeeds(forward.tg, plan, tile),
      x: { data: cropPlanes(x, 3, height, width, tile.top, tile.left, ch, cw, xCrop), dims: [1, 3, ch, cw] },
    },
    fetches,
  );
}

/** Each style layer's unnormalised Gram matrix of a picture, summed over its tiles in float64. */
async function sumGrams(
  forward: { compiled: CompiledGraph; tg: TileGraph },
  o: ResolvedObjective,
  plan: TilePlan,
  x: Float32Array,
  signal?: AbortSignal,
): Promise<Map<string, Float64Array>> {
  const grams = new Map(o.styleLayers.map((l) => [l, new Float64Array(channelsOf(l) ** 2)]));
  if (o.styleLayers.length === 0) return grams;
  const xCrop = new Float32Array(3 * plan.cropHeight * plan.cropWidth);
  for (const tile of plan.tiles) {
    throwIfStopped(signal);
    const out = await runForward(forward, plan, tile, x, o.styleLayers.map(gramOut), xCrop);
    for (const l of o.styleLayers) {
      const part = out[gramOut(l)]?.data as Float32Array;
      const sum = grams.get(l) as Float64Array;
      for (let k = 0; k < sum.length; k++) sum[k] = (sum[k] as number) + (part[k] as number);
    }
  }
  return grams;
}
