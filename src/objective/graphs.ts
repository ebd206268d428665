import { gradient } from "../autodiff/backward.js";
import { type Dim, Graph, type Tensor } from "../graph/graph.js";
import { contentLoss } from "../losses/content.js";
import { guidedGramUnnormalised, guidedStyleLoss, guidedStyleTerm, type Region } from "../losses/guided.js";
import { gramUnnormalised, styleLoss } from "../losses/style.js";
import { temporalLoss } from "../losses/temporal.js";
import { weightedTotal } from "../losses/total.js";
import { tvLoss } from "../losses/tv.js";
import { channelsOf, deepest, featureSize, poolsBefore } from "../network/layers.js";
import { buildVgg19 } from "../network/vgg19.js";
import type { VggWeights } from "../network/weights.js";
import * as names from "./names.js";
import type { ResolvedObjective } from "./options.js";

/**
 * The objective's graphs, every one built from the losses of src/losses/ (each written once):
 *
 * - objectiveGraph: the whole picture, every term, the total and its gradient in one call;
 * - featureGraph: the content features and the unnormalised Gram matrices of an image (the targets),
 *   or of one tile's owned part of the picture (the first pass of a tiled evaluation);
 * - styleHeadGraph: the style terms from the picture's Gram matrices summed over the tiles, and the
 *   total's derivative with respect to each Gram matrix;
 * - tileGradientGraph: a tile's content and TV terms and its share of the gradient, the style terms
 *   entering through <dL/dG, G_tile> (the chain rule through the picture's Gram matrix).
 *
 * A tile is a crop of the picture whose convolutions see zeros outside the picture (`valid_<k>`
 * masks) and whose terms count only the positions it owns (`own_<k>`): src/objective/tiling.ts.
 */

/** How a graph sees its input: the whole picture, a crop of it (one tile), or an image of any size. */
export type Layout =
  | { kind: "whole"; width: number; height: number }
  | { kind: "crop"; cropWidth: number; cropHeight: number; picture: { width: number; height: number } }
  | { kind: "any" };

/** Which layers the network computes, and its pooling: all a feature pass needs of the objective. */
export type LayerChoice = Pick<ResolvedObjective, "contentLayers" | "styleLayers" | "pooling">;

export interface NetworkSpec<O extends LayerChoice = ResolvedObjective> {
  weights: VggWeights;
  o: O;
  /** MaxPool's Indices output for the gradient (the CPU's fast path; WebGPU has none). */
  poolIndices: boolean;
}

/** Data for inputs that a graph holds as constants instead (a GPU then keeps them in its memory). */
export type Constants = names.Feeds;

interface Network {
  x: Tensor;
  acts: Map<string, Tensor>;
  /** A layer's features where the graph owns them: all of them, or a tile's own positions. */
  owned: (l: string) => Tensor;
  /** 1 where a crop's position at a pooling level lies in the picture, and where the tile owns it. */
  valid?: (level: number) => Tensor;
  own?: (level: number) => Tensor;
}

/** VGG19 up to the deepest layer used, on the layout's input; on a crop, masked to the picture. */
function network(g: Graph, spec: NetworkSpec<LayerChoice>, layout: Layout, differentiable: boolean): Network {
  const shape: Dim[] =
    layout.kind === "whole"
      ? [1, 3, layout.height, layout.width]
      : layout.kind === "crop"
        ? [1, 3, layout.cropHeight, layout.cropWidth]
        : [1, 3, "height", "width"];
  const x = g.input(names.X, shape);
  const layers = [...spec.o.contentLayers, ...spec.o.styleLayers];
  if (layers.length === 0) return { x, acts: new Map(), owned: () => x };
  const base = {
    pooling: spec.o.pooling,
    upTo: deepest(layers),
    differentiable,
    poolIndices: spec.poolIndices,
  };
  if (layout.kind !== "crop") {
    const acts = buildVgg19(g, x, spec.weights, base);
    return { x, acts, owned: (l) => acts.get(l) as Tensor };
  }
  const masks = new Map<string, Tensor>();
  const mask = (name: string, level: number) => {
    let t = masks.get(name);
    if (!t) {
      const s = 2 ** level;
      t = g.input(name, [1, 1, layout.cropHeight / s, layout.cropWidth / s]);
      masks.set(name, t);
    }
    return t;
  };
  const valid = (level: number) => mask(names.validMaskInput(level), level);
  const own = (level: number) => mask(names.ownMaskInput(level), level);
  const acts = buildVgg19(g, x, spec.weights, {
    ...base,
    maskInput: (level, h) => g.op1("Mul", [h, valid(level)]),
  });
  return { x, acts, owned: (l) => g.op1("Mul", [acts.get(l) as Tensor, own(poolsBefore(l))]), valid, own };
}

/** The picture's size, which normalises every term (a crop's terms are shares of the picture's). */
function pictureOf(layout: Layout): { width: number; height: number } {
  if (layout.kind === "whole") return layout;
  if (layout.kind === "crop") return layout.picture;
  throw new Error("an objective graph needs a known picture size");
}

/** A layer's mask input at the layout's size (a crop's part of the mask on a crop). */
function layerShape(layout: Layout, l: string): Dim[] {
  if (layout.kind === "any") return [1, 1, `mask_h_${l}`, `mask_w_${l}`];
  if (layout.kind === "crop") {
    const s = 2 ** poolsBefore(l);
    return [1, 1, layout.cropHeight / s, layout.cropWidth / s];
  }
  const [h, w] = featureSize(layout.height, layout.width, l);
  return [1, 1, h, w];
}

/** The content terms: each content layer against its target, over the positions the graph owns. */
function contentTerms(g: Graph, spec: NetworkSpec, net: Network, layout: Layout) {
  const picture = pictureOf(layout);
  return spec.o.contentLayers.map((l, i) => {
    const c = channelsOf(l);
    const [h, w] = featureSize(picture.height, picture.width, l);
    const s = 2 ** poolsBefore(l);
    const shape = layout.kind === "crop" ? [1, c, layout.cropHeight / s, layout.cropWidth / s] : [1, c, h, w];
    const own = net.own?.(poolsBefore(l));
    const term = contentLoss(
      g,
      net.acts.get(l) as Tensor,
      g.input(names.contentTarget(l), shape),
      c * h * w,
      own,
    );
    g.output(term, names.contentTerm(l));
    return { term, weight: spec.o.contentWeight * (spec.o.contentLayerWeights[i] as number) };
  });
}

function tvTerm(g: Graph, spec: NetworkSpec, net: Network, layout: Layout) {
  const picture = pictureOf(layout);
  const masks = net.own && net.valid ? { owned: net.own(0), valid: net.valid(0) } : undefined;
  const term = tvLoss(g, net.x, 3 * picture.width * picture.height, masks);
  g.output(term, names.TV);
  return { term, weight: spec.o.tvWeight };
}

/**
 * The temporal term (src/losses/temporal.ts) against the warped previous frame, its inputs at the
 * layout's size (a crop's part of them on a crop), over the pixels the graph owns.
 */
function temporalTerm(g: Graph, spec: NetworkSpec, net: Network, layout: Layout) {
  const picture = pictureOf(layout);
  const [h, w] =
    layout.kind === "crop" ? [layout.cropHeight, layout.cropWidth] : [picture.height, picture.width];
  const term = temporalLoss(
    g,
    net.x,
    g.input(names.TEMPORAL_TARGET, [1, 3, h, w]),
    g.input(names.TEMPORAL_CERTAINTY, [1, 1, h, w]),
    3 * picture.width * picture.height,
    net.own?.(0),
  );
  g.output(term, names.TEMPORAL);
  return { term, weight: spec.o.temporalWeight };
}

/** Each region's normaliser, share and target at a style layer, as inputs, with its term's weight. */
function regionParams(g: Graph, l: string, weights: readonly number[]): Omit<Region, "mask">[] {
  const c = channelsOf(l);
  return weights.map((weight, r) => ({
    scale: g.input(names.regionScale(l, r), []),
    share: g.input(names.regionShare(l, r), []),
    target: g.input(names.regionTarget(l, r), [c, c]),
    weight,
  }));
}

/** Styles by region: the weight of each region's term (the blend, scaled so that equal blends weigh 1). */
export function regionWeights(o: ResolvedObjective): number[] {
  return o.styleBlend.map((b) => b * o.styleBlend.length);
}

/** The whole picture's objective: every term, the weighted total and its gradient, in one call. */
export function objectiveGraph(
  spec: NetworkSpec,
  layout: Extract<Layout, { kind: "whole" }>,
  options: { regions: boolean; temporal?: boolean; constants?: Constants },
): Graph {
  const g = new Graph();
  const { o } = spec;
  const net = network(g, spec, layout, true);
  const terms = contentTerms(g, spec, net, layout);
  o.styleLayers.forEach((l, i) => {
    const c = channelsOf(l);
    const [h, w] = featureSize(layout.height, layout.width, l);
    const features = net.acts.get(l) as Tensor;
    const term = options.regions
      ? guidedStyleLoss(
          g,
          features,
          regionParams(g, l, regionWeights(o)).map((p, r) => ({
            ...p,
            mask: g.input(names.regionMask(l, r), layerShape(layout, l)),
          })),
        )
      : styleLoss(
          g,
          gramUnnormalised(g, features),
          g.scalar(1 / (c * h * w)),
          g.input(names.styleTarget(l), [c, c]),
        );
    g.output(term, names.styleTerm(l));
    terms.push({ term, weight: o.styleWeight * (o.styleLayerWeights[i] as number) });
  });
  terms.push(tvTerm(g, spec, net, layout));
  if (options.temporal) terms.push(temporalTerm(g, spec, net, layout));
  const total = g.output(weightedTotal(g, terms), names.TOTAL);
  g.output(gradient(g, total, net.x), names.GRADIENT);
  return options.constants ? withConstants(g, options.constants) : g;
}

/**
 * The feature pass: each content layer's features (`feat_<l>`) and each style layer's unnormalised
 * Gram matrix of the part the graph owns (`gram_<l>`), or with `slots` region masks, one guided Gram
 * per mask (`gram_<l>_<r>`). On the layout "any" it reads an image of any size.
 */
export function featureGraph(spec: NetworkSpec<LayerChoice>, layout: Layout, slots: number): Graph {
  const g = new Graph();
  const net = network(g, spec, layout, false);
  for (const l of spec.o.contentLayers) g.output(net.acts.get(l) as Tensor, names.featuresName(l));
  for (const l of spec.o.styleLayers) {
    const f = net.owned(l);
    if (slots === 0) g.output(gramUnnormalised(g, f), names.gramName(l));
    for (let r = 0; r < slots; r++) {
      const mask = g.input(names.regionMask(l, r), layerShape(layout, l));
      g.output(guidedGramUnnormalised(g, f, mask), names.gramName(l, r));
    }
  }
  return g;
}

/**
 * The style terms of the picture from its Gram matrices summed over the tiles (`gram_<l>[_<r>]`
 * inputs), their weighted sum `style_total`, and its derivative with respect to each Gram matrix
 * (`dgram_<l>[_<r>]`), which the tile gradient graphs read.
 */
export function styleHeadGraph(
  o: ResolvedObjective,
  picture: { width: number; height: number },
  regions: boolean,
): Graph {
  const g = new Graph();
  const grams: [string, Tensor][] = [];
  const terms = o.styleLayers.map((l, i) => {
    const c = channelsOf(l);
    const gramInput = (r?: number) => {
      const t = g.input(names.gramName(l, r), [c, c]);
      grams.push([names.dGramName(l, r), t]);
      return t;
    };
    let term: Tensor;
    if (regions) {
      term = guidedStyleTerm(
        g,
        regionParams(g, l, regionWeights(o)).map((p, r) => ({ ...p, gram: gramInput(r) })),
      );
    } else {
      const [h, w] = featureSize(picture.height, picture.width, l);
      term = styleLoss(g, gramInput(), g.scalar(1 / (c * h * w)), g.input(names.styleTarget(l), [c, c]));
    }
    g.output(term, names.styleTerm(l));
    return { term, weight: o.styleWeight * (o.styleLayerWeights[i] as number) };
  });
  const total = g.output(weightedTotal(g, terms), names.STYLE_TOTAL);
  for (const [name, gram] of grams) g.output(gradient(g, total, gram), name);
  return g;
}

/**
 * A tile's content, TV (and temporal) terms over its own positions, normalised by the picture's size, and the
 * gradient of content + TV + sum over style layers (and regions) of <dL/dG, G_tile>, where G_tile is
 * the tile's part of the picture's Gram matrix and dL/dG comes from the style head: the sum of the
 * tiles' gradients is the picture's.
 */
export function tileGradientGraph(
  spec: NetworkSpec,
  layout: Extract<Layout, { kind: "crop" }>,
  regions: number,
  temporal = false,
): Graph {
  const g = new Graph();
  const net = network(g, spec, layout, true);
  const terms = contentTerms(g, spec, net, layout);
  for (const l of spec.o.styleLayers) {
    const c = channelsOf(l);
    const f = net.owned(l);
    const linear = (gram: Tensor, r?: number) =>
      g.op1("ReduceSum", [g.op1("Mul", [gram, g.input(names.dGramName(l, r), [c, c])])], { keepdims: 0 });
    if (regions === 0) terms.push({ term: linear(gramUnnormalised(g, f)), weight: 1 });
    for (let r = 0; r < regions; r++) {
      const mask = g.input(names.regionMask(l, r), layerShape(layout, l));
      terms.push({ term: linear(guidedGramUnnormalised(g, f, mask), r), weight: 1 });
    }
  }
  terms.push(tvTerm(g, spec, net, layout));
  if (temporal) terms.push(temporalTerm(g, spec, net, layout));
  const partial = g.output(weightedTotal(g, terms), names.PARTIAL);
  g.output(gradient(g, partial, net.x), names.GRADIENT);
  return g;
}

/** The graph with the inputs that `constants` has data for turned into constants. */
function withConstants(g: Graph, constants: Constants): Graph {
  for (const t of [...g.inputs]) {
    const data = constants[t.name]?.data;
    if (data === undefined) continue;
    g.inputs.splice(g.inputs.indexOf(t), 1);
    g.initializers.set(t.name, { tensor: t, data });
  }
  return g;
}
