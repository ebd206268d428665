import { UsageError } from "../errors.js";
import type { Graph, Tensor } from "../graph/graph.js";
import type { Mask } from "../image/masks.js";
import type { Region } from "../losses/guided.js";
import { channelsOf, featureSize, poolsBefore } from "../network/layers.js";

/**
 * Masks at the network's layers, for the guided Gram matrices of styles by region (src/losses/guided.ts).
 *
 * How a pixel mask becomes a layer's mask: by the network's own down-sampling. Each 2x2 stride-2
 * pooling of VGG19 halves the mask by averaging its 2x2 blocks (and drops an odd last row or column,
 * as the pooling does), so a layer's mask has exactly the layer's feature size and each value is the
 * share of the region in the pixels under that position. This is the paper's "simple" way (down-sample
 * the guidance channels to each feature map) rather than its "inside" way (keep only neurons whose
 * whole receptive field lies in the region), because: the receptive fields of relu4_1 and relu5_1
 * are 100 to 200 pixels wide, so at the sizes stylegram runs (256 to 1024 px) "inside" would leave a
 * wide band along every boundary, or a whole small region, without any style at the deep layers;
 * averaging keeps a soft mask soft, and masks that add up to 1 in the picture add up to 1 at every
 * layer (no gap opens between two regions); and it costs nothing at run time.
 *
 * The objective graph reads them as inputs, fed by Objective on the CPU (constants on WebGPU):
 *
 * - `style_mask_<layer>_<r>`: float32 [1, 1, h, w], region r's mask at the layer (h x w its feature size);
 *   a per-position input, sliced like the picture when the objective is evaluated by tiles.
 * - `style_mask_scale_<layer>_<r>`: float32 [] (a scalar), 1 / (C * sum of the mask's squares at the
 *   layer): the guided Gram's normaliser, a property of the whole mask (never of a tile).
 * - `style_mask_share_<layer>_<r>`: float32 [] (a scalar), sum of the mask / (h * w) at the layer: the
 *   region's share of the picture, which weighs its style term (see guidedStyleLoss); whole-mask too.
 * - `style_target_<layer>_<r>`: float32 [C, C], region r's target Gram matrix (from style image r).
 *
 * r counts from 0 in the order of the style images.
 */

export const regionMaskInput = (layer: string, r: number) => `style_mask_${layer}_${r}`;
export const regionScaleInput = (layer: string, r: number) => `style_mask_scale_${layer}_${r}`;
export const regionShareInput = (layer: string, r: number) => `style_mask_share_${layer}_${r}`;
export const regionTargetInput = (layer: string, r: number) => `style_target_${layer}_${r}`;

/** A mask averaged down to the feature size of each of `layers` (masks by layer name). */
export function masksAtLayers(mask: Mask, layers: readonly string[]): Map<string, Float32Array> {
  const byPools: Float32Array[] = [mask.data];
  const sizes: [number, number][] = [[mask.height, mask.width]];
  const deepest = Math.max(0, ...layers.map(poolsBefore));
  for (let k = 1; k <= deepest; k++) {
    const [h, w] = sizes[k - 1] as [number, number];
    const src = byPools[k - 1] as Float32Array;
    const oh = Math.floor(h / 2);
    const ow = Math.floor(w / 2);
    const out = new Float32Array(oh * ow);
    for (let y = 0; y < oh; y++)
      for (let x = 0; x < ow; x++) {
        const a = 2 * y * w + 2 * x;
        out[y * ow + x] =
          ((src[a] as number) +
            (src[a + 1] as number) +
            (src[a + w] as number) +
            (src[a + w + 1] as number)) /
          4;
      }
    byPools.push(out);
    sizes.push([oh, ow]);
  }
  const result = new Map<string, Float32Array>();
  for (const l of layers) {
    const [h, w] = featureSize(mask.height, mask.width, l);
    const m = byPools[poolsBefore(l)] as Float32Array;
    if (m.length !== h * w) throw new Error(`mask at ${l}: ${m.length} values for ${h}x${w}`);
    result.set(l, m);
  }
  return result;
}

/** 1 / (C * sum of squares): what makes a guided Gram the mask-weighted mean of F F^T / C. */
export function guidedScale(layer: string, mask: Float32Array, what: string): number {
  let squares = 0;
  for (let i = 0; i < mask.length; i++) squares += (mask[i] as number) ** 2;
  if (!(squares > 0)) {
    throw new UsageError(
      `${what} covers nothing at layer ${layer} (the region is too small, or lies only in the last odd row or column, which the network's poolings drop): ` +
        "make the region larger, use a larger --size, or leave out the deep style layers (--style-layers)",
    );
  }
  return 1 / (channelsOf(layer) * squares);
}

export type Feeds = Record<string, { data: Float32Array; dims: readonly number[] }>;

/** The masks, normalisers and shares the objective graph reads for each region (see the names above). */
export function regionFeeds(masks: readonly Mask[], styleLayers: readonly string[]): Feeds {
  const feeds: Feeds = {};
  masks.forEach((mask, r) => {
    const atLayers = masksAtLayers(mask, styleLayers);
    for (const l of styleLayers) {
      const m = atLayers.get(l) as Float32Array;
      const [h, w] = featureSize(mask.height, mask.width, l);
      feeds[regionMaskInput(l, r)] = { data: m, dims: [1, 1, h, w] };
      feeds[regionScaleInput(l, r)] = {
        data: Float32Array.of(guidedScale(l, m, `mask ${r + 1}`)),
        dims: [],
      };
      let sum = 0;
      for (let i = 0; i < m.length; i++) sum += m[i] as number;
      feeds[regionShareInput(l, r)] = { data: Float32Array.of(sum / (h * w)), dims: [] };
    }
  });
  return feeds;
}

/**
 * Extra bytes of the objective with `regions` masked regions: at each style layer, each region's
 * weighted copy of the features (kept for the backward pass) and its gradient, less what
 * onnxruntime's memory planner shares. Measured (peak RSS, two evaluations at 512x384, default
 * layers): +223 MB with 2 regions, +322 MB with 4, against 96 MB of style-layer activations;
 * REGION_FACTOR x that per region is the upper envelope (+240 and +480 MB).
 */
export const REGION_FACTOR = 1.25;

export function regionBytes(
  width: number,
  height: number,
  styleLayers: readonly string[],
  regions: number,
): number {
  let bytes = 0;
  for (const l of styleLayers) {
    const [h, w] = featureSize(height, width, l);
    bytes += 4 * channelsOf(l) * h * w;
  }
  return REGION_FACTOR * regions * bytes;
}

/**
 * The content-side masks of styles by region, checked against the images, or undefined without
 * regions. Style masks alone make one white mask per style: each style everywhere, from its part.
 */
export function regionMasks(init: {
  content: { width: number; height: number };
  styles: readonly unknown[];
  masks?: readonly Mask[] | undefined;
  styleMasks?: readonly (Mask | undefined)[] | undefined;
}): readonly Mask[] | undefined {
  const { masks, styleMasks, styles, content } = init;
  if (masks === undefined && !styleMasks?.some((m) => m !== undefined)) return undefined;
  const count = (what: string, n: number) => {
    if (n !== styles.length)
      throw new UsageError(
        `${n} ${what} for ${styles.length} style image${styles.length === 1 ? "" : "s"}: give one per style image, in the same order`,
      );
  };
  if (styleMasks !== undefined) count("style masks", styleMasks.length);
  if (masks === undefined) {
    const white = new Float32Array(content.width * content.height).fill(1);
    return styles.map(() => ({ width: content.width, height: content.height, data: white }));
  }
  count("masks", masks.length);
  masks.forEach((m, i) => {
    if (m.width !== content.width || m.height !== content.height)
      throw new UsageError(
        `mask ${i + 1} is ${m.width}x${m.height} but the content image is ${content.width}x${content.height}: resize it to the content image (stylize() does)`,
      );
  });
  return masks;
}

/** Region r's target Gram matrices as the graph's inputs (see the names above). */
export function regionTargetFeeds(targets: readonly Map<string, Float32Array>[]): Feeds {
  const feeds: Feeds = {};
  targets.forEach((byLayer, r) => {
    for (const [l, data] of byLayer) {
      const c = channelsOf(l);
      feeds[regionTargetInput(l, r)] = { data, dims: [c, c] };
    }
  });
  return feeds;
}

/**
 * The regions of one style layer in the objective graph: each region's mask, normaliser, share and target
 * as graph inputs, or as constants where `constants` has them (the WebGPU graph keeps its data on the GPU).
 */
export function regionInputs(
  g: Graph,
  layer: string,
  size: { width: number; height: number },
  weights: readonly number[],
  constants?: Feeds,
): Region[] {
  const [h, w] = featureSize(size.height, size.width, layer);
  const c = channelsOf(layer);
  const fed = (name: string, shape: number[]): Tensor => {
    const data = constants?.[name]?.data;
    return data === undefined ? g.input(name, shape) : g.constant(data, shape, name);
  };
  return weights.map((weight, r) => ({
    mask: fed(regionMaskInput(layer, r), [1, 1, h, w]),
    scale: fed(regionScaleInput(layer, r), []),
    share: fed(regionShareInput(layer, r), []),
    target: fed(regionTargetInput(layer, r), [c, c]),
    weight,
  }));
}
