import { message, opt, UsageError } from "../errors.js";
import type { Mask } from "../image/masks.js";
import { channelsOf, featureSize, poolsBefore } from "../network/layers.js";
import type { Feeds } from "./names.js";
import * as names from "./names.js";

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
 * The objective graph reads them as inputs (src/objective/names.ts): each region's mask at each style
 * layer, its normaliser and share (scalars of the whole mask, never of a tile) and its target.
 */

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
      message`${what} covers nothing at layer ${layer} (the region is too small, or lies only in the last odd row or column, which the network's poolings drop): make the region larger, use a larger ${opt("size")}, or leave out the deep style layers (${opt("styleLayers")})`,
      { option: "masks" },
    );
  }
  return 1 / (channelsOf(layer) * squares);
}

/** The masks, normalisers and shares the objective graph reads for each region (see the names above). */
export function regionFeeds(masks: readonly Mask[], styleLayers: readonly string[]): Feeds {
  const feeds: Feeds = {};
  masks.forEach((mask, r) => {
    const atLayers = masksAtLayers(mask, styleLayers);
    for (const l of styleLayers) {
      const m = atLayers.get(l) as Float32Array;
      const [h, w] = featureSize(mask.height, mask.width, l);
      feeds[names.regionMask(l, r)] = { data: m, dims: [1, 1, h, w] };
      feeds[names.regionScale(l, r)] = {
        data: Float32Array.of(guidedScale(l, m, `mask ${r + 1}`)),
        dims: [],
      };
      let sum = 0;
      for (let i = 0; i < m.length; i++) sum += m[i] as number;
      feeds[names.regionShare(l, r)] = { data: Float32Array.of(sum / (h * w)), dims: [] };
    }
  });
  return feeds;
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
      feeds[names.regionTarget(l, r)] = { data, dims: [c, c] };
    }
  });
  return feeds;
}
