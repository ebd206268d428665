import { message, opt, UsageError } from "../errors.js";
import { parseLayer } from "../network/layers.js";
import type { Pooling } from "../network/vgg19.js";
import { checkPresent, namesIn } from "../options/check.js";
import { DEFAULTS } from "../options/defaults.js";

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
  /**
   * Weight of the temporal term (video: the squared difference to the warped previous frame where
   * the flow is certain); it counts only where stylize()'s `temporal` gives that frame.
   */
  temporalWeight?: number;
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
  temporalWeight: number;
  pooling: Pooling;
  styleBlend: number[];
}

/** The option names of ObjectiveOptions (the registry's "objective" scope). */
export const OBJECTIVE_OPTION_KEYS = namesIn("objective");

/** Relative weights normalised to sum 1, or equal weights when none are given. */
export function normaliseWeights(
  what: string,
  weights: readonly number[] | undefined,
  count: number,
  of = "entries",
): number[] {
  if (weights === undefined || weights.length === 0) return Array.from({ length: count }, () => 1 / count);
  if (weights.length !== count) {
    // "style images" said of one: "style image".
    const things = count === 1 ? of.replace(/s$/, "") : of;
    throw new UsageError(
      message`${opt(what)}: ${weights.length} given, but there ${count === 1 ? "is" : "are"} ${count} ${things}`,
      { option: what },
    );
  }
  const sum = weights.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new UsageError(message`${opt(what)} must not all be zero`, { option: what });
  return weights.map((w) => w / sum);
}

function layers(what: string, specs: readonly (string | number)[]): string[] {
  const out = specs.map((l) => parseLayer(String(l)));
  const dup = out.find((l, i) => out.indexOf(l) !== i);
  if (dup) throw new UsageError(message`${opt(what)} names ${dup} twice`, { option: what });
  return out;
}

/** The objective's options checked against the registry, with defaults filled in and weights normalised. */
export function resolveObjective(options: ObjectiveOptions, styleCount: number): ResolvedObjective {
  checkPresent(options as Record<string, unknown>, OBJECTIVE_OPTION_KEYS);
  const contentLayers = layers("contentLayers", options.contentLayers ?? DEFAULTS.contentLayers);
  const styleLayers = layers("styleLayers", options.styleLayers ?? DEFAULTS.styleLayers);
  if (styleLayers.length > 0 && styleCount < 1)
    throw new UsageError(
      message`style layers are set but no style image is given: give one, or no style layers (${opt("styleLayers", "none")})`,
      { option: "styleLayers" },
    );
  return {
    contentLayers,
    contentLayerWeights:
      contentLayers.length === 0
        ? []
        : normaliseWeights(
            "contentLayerWeights",
            options.contentLayerWeights,
            contentLayers.length,
            "content layers",
          ),
    styleLayers,
    styleLayerWeights:
      styleLayers.length === 0
        ? []
        : normaliseWeights(
            "styleLayerWeights",
            options.styleLayerWeights,
            styleLayers.length,
            "style layers",
          ),
    contentWeight: options.contentWeight ?? DEFAULTS.contentWeight,
    styleWeight: options.styleWeight ?? DEFAULTS.styleWeight,
    tvWeight: options.tvWeight ?? DEFAULTS.tvWeight,
    temporalWeight: options.temporalWeight ?? DEFAULTS.temporalWeight,
    pooling: options.pooling ?? DEFAULTS.pooling,
    styleBlend:
      styleCount === 0 ? [] : normaliseWeights("styleBlend", options.styleBlend, styleCount, "style images"),
  };
}
