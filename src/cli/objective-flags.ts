import type { ParseArgsConfig } from "node:util";
import { DEFAULTS } from "../defaults.js";
import { UsageError } from "../errors.js";
import { resolveWeightsFor } from "../models/resolve.js";
import type { VggWeights } from "../network/weights.js";
import type { ObjectiveOptions } from "../objective/options.js";
import { DEVICE_REQUESTS, type DeviceRequest } from "../runtime/device.js";
import { downloadProgress } from "./download-progress.js";
import { oneOf, parseList, parseNumber, parseNumbers } from "./parse.js";

/** The flags that shape the objective, shared by `stylegram` and `stylegram loss`. */
export const OBJECTIVE_FLAGS = {
  "content-layers": { type: "string" },
  "content-layer-weights": { type: "string" },
  "style-layers": { type: "string" },
  "style-layer-weights": { type: "string" },
  "content-weight": { type: "string" },
  "style-weight": { type: "string" },
  "tv-weight": { type: "string" },
  "style-blend": { type: "string" },
  pooling: { type: "string" },
  weights: { type: "string" },
  fetch: { type: "boolean" },
  threads: { type: "string" },
  device: { type: "string" },
  tile: { type: "string" },
} as const satisfies ParseArgsConfig["options"];

export const OBJECTIVE_HELP = `Objective:
  --content-layers L,...        layers matched to the content (default ${DEFAULTS.contentLayers.join(",")});
                                names relu1_1..relu5_4 or indices 1..16
  --content-layer-weights W,... relative weight per content layer (default equal; normalised to sum 1)
  --style-layers L,...          layers whose Gram matrices are matched (default ${DEFAULTS.styleLayers.join(",")})
  --style-layer-weights W,...   relative weight per style layer (default equal; normalised to sum 1)
  --content-weight N            weight of the content term (default ${DEFAULTS.contentWeight})
  --style-weight N              weight of the style term (default ${DEFAULTS.styleWeight})
  --tv-weight N                 weight of the total-variation term (default ${DEFAULTS.tvWeight})
  --style-blend W,...           blend weights of several style images (default equal)
  --pooling max|avg             VGG19 pooling (default ${DEFAULTS.pooling})
  --weights PATH                VGG19 weights: a folder, a Keras .h5 or a .safetensors file
                                (default: $STYLEGRAM_WEIGHTS, else the cache of 'stylegram models fetch')
  --fetch                       download the weights into the cache first if they are missing
  --threads N                   compute threads (default: all cores)
  --device cpu|webgpu|auto      where to compute (default auto: a real GPU through onnxruntime's
                                WebGPU provider when there is one, else the CPU)
  --tile N                      evaluate in tiles of N px (a multiple of 16), in memory bounded by
                                the tile, with the same result (default: whole, or in the largest
                                tiles that fit when the whole picture would not fit in memory)`;

type Values = { [K in keyof typeof OBJECTIVE_FLAGS]?: string | boolean };

/**
 * The weights the flags ask for, fetched first when --fetch (or STYLEGRAM_AUTO_FETCH=1) says so;
 * `signal` stops such a download.
 */
export async function weightsFromFlags(v: Values, signal?: AbortSignal): Promise<VggWeights> {
  const progress = downloadProgress(process.stderr, "vgg19");
  const weights = await resolveWeightsFor({
    ...(typeof v.weights === "string" ? { path: v.weights } : {}),
    ...(v.fetch === true ? { fetch: true } : {}),
    onFetchProgress: progress.update,
    ...(signal ? { signal } : {}),
  });
  return weights;
}

const str = (v: string | boolean | undefined) => (typeof v === "string" ? v : undefined);

export function objectiveOptions(v: Values): ObjectiveOptions {
  const o: ObjectiveOptions = {};
  const set = <K extends keyof ObjectiveOptions>(k: K, value: ObjectiveOptions[K] | undefined) => {
    if (value !== undefined) o[k] = value;
  };
  set("contentLayers", parseList(str(v["content-layers"])));
  set("contentLayerWeights", parseNumbers("--content-layer-weights", str(v["content-layer-weights"])));
  set("styleLayers", parseList(str(v["style-layers"])));
  set("styleLayerWeights", parseNumbers("--style-layer-weights", str(v["style-layer-weights"])));
  set("contentWeight", parseNumber("--content-weight", str(v["content-weight"])));
  set("styleWeight", parseNumber("--style-weight", str(v["style-weight"])));
  set("tvWeight", parseNumber("--tv-weight", str(v["tv-weight"])));
  set("styleBlend", parseNumbers("--style-blend", str(v["style-blend"])));
  set("pooling", oneOf("--pooling", str(v.pooling), ["max", "avg"] as const));
  return o;
}

/** --tile, checked; undefined leaves the library's default (tiles only when memory needs them). */
export function tileFromFlags(v: Values): number | undefined {
  const text = str(v.tile);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!(Number.isInteger(n) && n >= 16)) {
    throw new UsageError(
      `--tile expects a tile edge in pixels, a whole number >= 16 (e.g. 512), got "${text}"`,
    );
  }
  return n;
}

/** --device, checked; undefined leaves the library's default (auto). */
export function deviceFromFlags(v: Values): DeviceRequest | undefined {
  return oneOf("--device", str(v.device), DEVICE_REQUESTS);
}
