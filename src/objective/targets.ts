import { StylegramError, throwIfStopped } from "../errors.js";
import { Graph, type Tensor } from "../graph/graph.js";
import type { RgbImage } from "../image/image.js";
import { toNetworkInput } from "../image/image.js";
import type { Mask } from "../image/masks.js";
import { gramUnnormalised } from "../losses/style.js";
import { channelsOf, deepest, featureSize } from "../network/layers.js";
import { buildVgg19, type Pooling } from "../network/vgg19.js";
import type { VggWeights } from "../network/weights.js";
import { CompiledGraph, type RuntimeOptions } from "../runtime/session.js";
import { guidedScale, masksAtLayers } from "./masks.js";
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
 * Computes the content features and the style Gram targets once, with a
 * forward-only graph whose input size is symbolic, so that the content image
 * and each style image can have any size.
 */
export async function computeTargets(args: {
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
  /** Stops between the forward passes (each image's pass runs to its end). */
  signal?: AbortSignal;
}): Promise<Targets> {
  const { contentLayers, styleLayers } = args;
  const all = [...contentLayers, ...styleLayers];
  const result: Targets = { content: new Map(), style: new Map() };
  if (all.length === 0) return result;

  const g = new Graph();
  const x = g.input("image", [1, 3, "height", "width"]);
  const acts = buildVgg19(g, x, args.weights, {
    pooling: args.pooling,
    upTo: deepest(all),
    differentiable: false,
  });
  for (const l of contentLayers) g.output(acts.get(l) as never, `content_${l}`);
  // With regions, each style layer's features are weighted by a mask input first (ones for an image
  // without a style mask, and for the content image, whose run does not read them).
  const regions = args.regions;
  for (const l of styleLayers) {
    const features = acts.get(l) as Tensor;
    const masked = regions
      ? g.op1("Mul", [features, g.input(`mask_${l}`, [1, 1, `mask_h_${l}`, `mask_w_${l}`])])
      : features;
    g.output(gramUnnormalised(g, masked), `gram_${l}`);
  }
  throwIfStopped(args.signal);
  const compiled = await CompiledGraph.compile(g, args.runtime);
  try {
    const ones = Float32Array.of(1);
    const maskFeeds = (masks?: Map<string, Float32Array>, img?: RgbImage) =>
      regions
        ? Object.fromEntries(
            styleLayers.map((l) => {
              const m = masks?.get(l);
              const [h, w] = m && img ? featureSize(img.height, img.width, l) : [1, 1];
              return [`mask_${l}`, { data: m ?? ones, dims: [1, 1, h, w] }];
            }),
          )
        : {};
    const run = (img: RgbImage, fetches: string[], masks?: Map<string, Float32Array>) => {
      throwIfStopped(args.signal);
      return compiled.run(
        {
          image: { data: toNetworkInput(img), dims: [1, 3, img.height, img.width] },
          ...maskFeeds(masks, img),
        },
        fetches,
      );
    };

    if (contentLayers.length > 0) {
      if (!args.content) throw new Error("content layers are set but no content image is given");
      checkImageSize("content image", args.content, contentLayers);
      const out = await run(
        args.content,
        contentLayers.map((l) => `content_${l}`),
      );
      for (const l of contentLayers) result.content.set(l, out[`content_${l}`]?.data as Float32Array);
    }

    if (regions) {
      result.regions = [];
      for (const [i, img] of styleLayers.length > 0 ? args.styles.entries() : []) {
        const what = `style image ${args.styles.length > 1 ? i + 1 : ""}`.trim();
        checkImageSize(what, img, styleLayers);
        const styleMask = regions.styleMasks[i];
        if (styleMask && (styleMask.width !== img.width || styleMask.height !== img.height)) {
          throw new StylegramError(
            `the style mask of ${what} is ${styleMask.width}x${styleMask.height}, the image ${img.width}x${img.height}: resize it to the image (stylize() does)`,
          );
        }
        const masks = styleMask && masksAtLayers(styleMask, styleLayers);
        const out = await run(
          img,
          styleLayers.map((l) => `gram_${l}`),
          masks,
        );
        const grams = new Map<string, Float32Array>();
        for (const l of styleLayers) {
          const [h, w] = featureSize(img.height, img.width, l);
          const m = masks?.get(l);
          const scale = m ? guidedScale(l, m, `the style mask of ${what}`) : 1 / (channelsOf(l) * h * w);
          const gramData = out[`gram_${l}`]?.data as Float32Array;
          grams.set(
            l,
            Float32Array.from(gramData, (v) => v * scale),
          );
        }
        result.regions.push(grams);
      }
      return result;
    }

    for (const l of styleLayers) result.style.set(l, new Float32Array(channelsOf(l) ** 2));
    for (const [i, img] of styleLayers.length > 0 ? args.styles.entries() : []) {
      checkImageSize(`style image ${args.styles.length > 1 ? i + 1 : ""}`.trim(), img, styleLayers);
      const out = await run(
        img,
        styleLayers.map((l) => `gram_${l}`),
      );
      const blend = args.styleBlend[i] as number;
      for (const l of styleLayers) {
        const [h, w] = featureSize(img.height, img.width, l);
        const scale = blend / (channelsOf(l) * h * w);
        const gramData = out[`gram_${l}`]?.data as Float32Array;
        const target = result.style.get(l) as Float32Array;
        for (let k = 0; k < target.length; k++)
          target[k] = (target[k] as number) + (gramData[k] as number) * scale;
      }
    }
  } finally {
    await compiled.release();
  }
  return result;
}
