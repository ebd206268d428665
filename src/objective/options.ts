import { DEFAULTS } from "../defaults.js";
import { UsageError } from "../errors.js";
import { parseLayer } from "../network/layers.js";
import type { Pooling } from "../network/vgg19.js";
import { finiteNumber, listOf, oneOfValues } from "../validate.js";

/** What the objective is made of; every field is optional and falls back to DEFAULTS. */
export interface ObjectiveOptions {
  /** Layers whose activations are matched to the content image (names like relu4_2 or indices 1..16). */
  contentLayers?: readonly string[];
  /** Relative weight of each content layer; normalised to sum 1. Default: equal. */
  contentLayerWeights?: readonly number[];
  /** Layers whose Gram matrices are matched to the style image(s). */
  styleLayers?: readonly string[];
  /** Relative weight of each style layer; normalised to sum 1. Default: equal. */
  styleLayerWeights?: readonly number[];
  contentWeight?: number;
  styleWeight?: number;
  tvWeight?: number;
  pooling?: Pooling;
  /** Blend weights of several style images; normalised to sum 1. Default: equal. */
  styleBlend?: readonly number[];
}

/** ObjectiveOptions checked, with defaults filled in, layer names canonical and weights normalised. */
export interface ResolvedObjective {
  contentLayers: string[];
  contentLayerWeights: number[];
  styleLayers: string[];
  styleLayerWeights: number[];
  contentWeight: number;
  styleWeight: number;
  tvWeight: number;
  pooling: Pooling;
  styleBlend: number[];
}

function nonNegative(name: string, v: unknown): number {
  return finiteNumber(name, v, { atLeast: 0 });
}

/** The option names of ObjectiveOptions, for the checks of the options objects that extend it. */
export const OBJECTIVE_OPTION_KEYS = [
  "contentLayers",
  "contentLayerWeights",
  "styleLayers",
  "styleLayerWeights",
  "contentWeight",
  "styleWeight",
  "tvWeight",
  "pooling",
  "styleBlend",
] as const;

/** Relative weights normalised to sum 1, or equal weights when none are given. */
export function normaliseWeights(
  what: string,
  weights: readonly number[] | undefined,
  count: number,
  of = "entries",
): number[] {
  if (weights === undefined) return Array.from({ length: count }, () => 1 / count);
  listOf(what, weights, (n, w) => nonNegative(n, w));
  if (weights.length === 0) return Array.from({ length: count }, () => 1 / count);
  if (weights.length !== count) {
    throw new UsageError(
      `${what}: ${weights.length} given, but there ${count === 1 ? "is" : "are"} ${count} ${of}`,
    );
  }
  const sum = weights.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new UsageError(`${what} must not all be zero`);
  return weights.map((w) => w / sum);
}

function layers(what: string, specs: unknown): string[] {
  const out = listOf(what, specs, (name, l) => {
    if (typeof l === "number" && Number.isInteger(l)) return parseLayer(String(l));
    if (typeof l !== "string")
      throw new UsageError(`${name} must be a layer name such as "relu4_2", got ${JSON.stringify(l)}`);
    return parseLayer(l);
  });
  const dup = out.find((l, i) => out.indexOf(l) !== i);
  if (dup) throw new UsageError(`${what} names ${dup} twice`);
  return out;
}

export function resolveObjective(options: ObjectiveOptions, styleCount: number): ResolvedObjective {
  const contentLayers = layers("content layers", options.contentLayers ?? DEFAULTS.contentLayers);
  const styleLayers = layers("style layers", options.styleLayers ?? DEFAULTS.styleLayers);
  const pooling = oneOfValues("pooling", options.pooling ?? DEFAULTS.pooling, ["max", "avg"] as const);
  if (styleLayers.length > 0 && styleCount < 1)
    throw new UsageError(
      "style layers are set but no style image is given: give one (--style FILE), or no style layers (--style-layers none)",
    );
  return {
    contentLayers,
    contentLayerWeights:
      contentLayers.length === 0
        ? []
        : normaliseWeights(
            "content layer weights",
            options.contentLayerWeights,
            contentLayers.length,
            "content layers",
          ),
    styleLayers,
    styleLayerWeights:
      styleLayers.length === 0
        ? []
        : normaliseWeights(
            "style layer weights",
            options.styleLayerWeights,
            styleLayers.length,
            "style layers",
          ),
    contentWeight: nonNegative("content weight", options.contentWeight ?? DEFAULTS.contentWeight),
    styleWeight: nonNegative("style weight", options.styleWeight ?? DEFAULTS.styleWeight),
    tvWeight: nonNegative("tv weight", options.tvWeight ?? DEFAULTS.tvWeight),
    pooling,
    styleBlend:
      styleCount === 0 ? [] : normaliseWeights("style blend", options.styleBlend, styleCount, "style images"),
  };
}
