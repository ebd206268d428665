import { StylegramError } from "../errors.js";
import type { RgbImage } from "../image/image.js";
import { toNetworkInput } from "../image/image.js";
import type { Mask } from "../image/masks.js";
import { channelsOf, featureSize } from "../network/layers.js";
import type { Pooling } from "../network/vgg19.js";
import type { VggWeights } from "../network/weights.js";
import type { RuntimeOptions } from "../runtime/session.js";
import { type FeaturePass, type PassSpec, TiledPass, WholePass } from "./passes.js";
import { guidedScale, masksAtLayers } from "./regions.js";
import { checkImageSize } from "./size.js";

export interface Targets {
  /** Content activations per content layer, 1 x C x h x w. */
  content: Map<string, Float32Array>;
  /** Blended, normalised Gram matrices per style layer, C x C (empty with regions). */
  style: Map<string, Float32Array>;
  /**
   * With styles by region: for each style image in order (region r), its own Gram matrix per style
   * layer, guided by its style mask when it has one (src/losses/guided.ts), not blended.
   */
  regions?: Map<string, Float32Array>[];
}

/**
 * Each style image's normalised Gram matrices, kept across objectives: a batch or a video computes
 * them once per style image and size instead of once per picture. Keyed by the image's pixels (a
 * hash of them and its size) and the layers and pooling asked for, so that the same painting read
 * again, or another object with the same pixels, finds them.
 */
export class TargetCache {
  private readonly grams = new Map<string, Map<string, Float32Array>>();

  private static key(img: RgbImage, layers: readonly string[], pooling: Pooling): string {
    // Two 32-bit hashes of the pixels (FNV-1a and djb2): a clash would need both to agree.
    let fnv = 0x811c9dc5;
    let djb = 5381;
    for (const b of img.data) {
      fnv = Math.imul(fnv ^ b, 0x01000193);
      djb = (Math.imul(djb, 33) + b) | 0;
    }
    return `${img.width}x${img.height}:${(fnv >>> 0).toString(16)}:${(djb >>> 0).toString(16)}:${pooling}:${layers.join(",")}`;
  }

  /** The Gram matrices of an image for these layers, if computed before. */
  get(img: RgbImage, layers: readonly string[], pooling: Pooling): Map<string, Float32Array> | undefined {
    return this.grams.get(TargetCache.key(img, layers, pooling));
  }

  set(img: RgbImage, layers: readonly string[], pooling: Pooling, grams: Map<string, Float32Array>): void {
    this.grams.set(TargetCache.key(img, layers, pooling), grams);
  }

  /** How many images' Gram matrices it holds. */
  get size(): number {
    return this.grams.size;
  }
}

export interface TargetRequest {
  weights: VggWeights;
  content: RgbImage | undefined;
  styles: readonly RgbImage[];
  styleBlend: readonly number[];
  contentLayers: readonly string[];
  styleLayers: readonly string[];
  pooling: Pooling;
  runtime?: RuntimeOptions;
  /**
   * Styles by region: one target per style image instead of the blend, each from the part of its
   * image that its style mask (at the style image's size; undefined: all of it) selects.
   */
  regions?: { styleMasks: readonly (Mask | undefined)[] };
  /** Computed tile by tile, in crops of this size (the tiled objective's); default: each image whole. */
  tiles?: { crop: { cropWidth: number; cropHeight: number }; halo: number };
  /** Stops between the passes (and tiles); a pass already running ends first. */
  signal?: AbortSignal;
  /** Style Gram matrices computed before (not with style masks, whose Grams are the mask's). */
  cache?: TargetCache;
}

/**
 * The content features and the style Gram targets, computed once, by one path: a feature pass over
 * each image (whole, or tile by tile; the same numbers), then the Gram matrices normalised by each
 * image's size (or its style mask) and blended.
 */
export async function computeTargets(req: TargetRequest): Promise<Targets> {
  const { contentLayers, styleLayers } = req;
  const result: Targets = { content: new Map(), style: new Map() };
  if (contentLayers.length + styleLayers.length === 0) return result;
  const spec: PassSpec = {
    weights: req.weights,
    o: { contentLayers: [...contentLayers], styleLayers: [...styleLayers], pooling: req.pooling },
    poolIndices: false,
    slots: req.regions ? 1 : 0,
    ...(req.runtime ? { runtime: req.runtime } : {}),
  };
  const pass: FeaturePass = req.tiles
    ? TiledPass.create(spec, req.tiles.crop, req.tiles.halo)
    : await WholePass.create(spec);
  try {
    return await targetsWith(pass, req);
  } finally {
    await pass.release();
  }
}

/** The targets from a feature pass (the tiled objective's own, so that one graph serves both). */
export async function targetsWith(pass: FeaturePass, req: TargetRequest): Promise<Targets> {
  const { contentLayers, styleLayers, signal } = req;
  const result: Targets = { content: new Map(), style: new Map() };
  const image = (img: RgbImage) => ({ x: toNetworkInput(img), width: img.width, height: img.height });

  if (contentLayers.length > 0) {
    if (!req.content) throw new Error("content layers are set but no content image is given");
    checkImageSize("content image", req.content, contentLayers);
    const out = await pass.run(image(req.content), { features: true, grams: false }, undefined, signal);
    for (const l of contentLayers) result.content.set(l, out.features.get(l) as Float32Array);
  }
  if (styleLayers.length === 0) return result;

  const grams: Map<string, Float32Array>[] = [];
  for (const [i, img] of req.styles.entries()) {
    const what = `style image ${req.styles.length > 1 ? i + 1 : ""}`.trim();
    checkImageSize(what, img, styleLayers);
    const styleMask = req.regions?.styleMasks[i];
    if (styleMask && (styleMask.width !== img.width || styleMask.height !== img.height)) {
      throw new StylegramError(
        `the style mask of ${what} is ${styleMask.width}x${styleMask.height}, the image ${img.width}x${img.height}: resize it to the image (stylize() does)`,
      );
    }
    const cached = styleMask ? undefined : req.cache?.get(img, styleLayers, req.pooling);
    if (cached) {
      grams.push(cached);
      continue;
    }
    const masks = styleMask && masksAtLayers(styleMask, styleLayers);
    const out = await pass.run(
      image(img),
      { features: false, grams: true },
      req.regions ? [masks] : undefined,
      signal,
    );
    // A Gram matrix's normaliser: 1 / (C h w) of the image, or of its style mask (a guided Gram).
    const normalised = new Map(
      styleLayers.map((l) => {
        const [h, w] = featureSize(img.height, img.width, l);
        const m = masks?.get(l);
        const scale = m ? guidedScale(l, m, `the style mask of ${what}`) : 1 / (channelsOf(l) * h * w);
        return [
          l,
          Float32Array.from((out.grams.get(l) as Float64Array[])[0] as Float64Array, (v) => v * scale),
        ];
      }),
    );
    grams.push(normalised);
    if (!styleMask) req.cache?.set(img, styleLayers, req.pooling, normalised);
  }
  if (req.regions) {
    result.regions = grams;
    return result;
  }
  for (const l of styleLayers) {
    const target = new Float32Array(channelsOf(l) ** 2);
    grams.forEach((byLayer, i) => {
      const gram = byLayer.get(l) as Float32Array;
      const blend = req.styleBlend[i] as number;
      for (let k = 0; k < target.length; k++) target[k] = (target[k] as number) + (gram[k] as number) * blend;
    });
    result.style.set(l, target);
  }
  return result;
}
