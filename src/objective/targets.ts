import { Graph } from "../graph/graph.js";
import type { RgbImage } from "../image/image.js";
import { toNetworkInput } from "../image/image.js";
import { gramUnnormalised } from "../losses/style.js";
import { channelsOf, deepest, featureSize } from "../network/layers.js";
import { buildVgg19, type Pooling } from "../network/vgg19.js";
import type { VggWeights } from "../network/weights.js";
import { CompiledGraph, type RuntimeOptions } from "../runtime/session.js";
import { checkImageSize } from "./size.js";

export interface Targets {
  /** Content activations per content layer, 1 x C x h x w. */
  content: Map<string, Float32Array>;
  /** Blended, normalised Gram matrices per style layer, C x C. */
  style: Map<string, Float32Array>;
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
  for (const l of styleLayers) g.output(gramUnnormalised(g, acts.get(l) as never), `gram_${l}`);
  const compiled = await CompiledGraph.compile(g, args.runtime);
  try {
    const run = (img: RgbImage, fetches: string[]) =>
      compiled.run({ image: { data: toNetworkInput(img), dims: [1, 3, img.height, img.width] } }, fetches);

    if (contentLayers.length > 0) {
      if (!args.content) throw new Error("content layers are set but no content image is given");
      checkImageSize("content image", args.content, contentLayers);
      const out = await run(
        args.content,
        contentLayers.map((l) => `content_${l}`),
      );
      for (const l of contentLayers) result.content.set(l, out[`content_${l}`]?.data as Float32Array);
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
