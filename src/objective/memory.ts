import { CONV_LAYERS, channelsOf, deepest, featureSize, RELU_LAYERS } from "../network/layers.js";
import { ALIGN, cropSize, haloFor, tileCount } from "./tiling.js";

/**
 * Peak memory of the objective, from the sizes of the graph's tensors.
 *
 * The graph keeps every ReLU output of the network up to the deepest layer used
 * (the backward pass needs them), and its backward pass and onnxruntime's
 * blocked-layout copies cost a fixed multiple of that. Both constants were
 * fitted to the peak RSS that `npm run bench:large` measures for one
 * evaluation (256 to 2048 px, default layers; see the README's memory table):
 * the process itself, onnxruntime and the float32 weights take BASE_BYTES, and
 * the graph ACTIVATION_FACTOR times the bytes of its activations. The fit is
 * the upper envelope of the measurements (within +6% of each, never below by
 * more than 1%): a run that the check lets through must not be killed.
 */
export const BASE_BYTES = 500e6;
export const ACTIVATION_FACTOR = 3.4;
/** Reading Keras' HDF5 weights loads h5wasm, which was measured to add this much to the peak. */
export const HDF5_READER_BYTES = 550 * 2 ** 20;
/** The forward-only graph that computes the style targets holds fewer copies of each activation. */
export const FORWARD_FACTOR = 1.5;

/** Bytes of the ReLU outputs of VGG19 up to `layers`' deepest, for a width x height input. */
export function activationBytes(width: number, height: number, layers: readonly string[]): number {
  if (layers.length === 0) return 0;
  const last = RELU_LAYERS.indexOf(deepest(layers));
  let bytes = 0;
  for (const conv of CONV_LAYERS.slice(0, last + 1)) {
    const relu = `relu${conv.slice(4)}`;
    const [h, w] = featureSize(height, width, relu);
    bytes += 4 * channelsOf(relu) * h * w;
  }
  return bytes;
}

/**
 * Bytes of the largest ReLU output up to `layers`' deepest (conv1's, 64 x H x W floats): what one GPU
 * buffer must hold, since WebGPU bounds one storage binding (maxStorageBufferBindingSize).
 */
export function largestActivationBytes(width: number, height: number, layers: readonly string[]): number {
  if (layers.length === 0) return 0;
  const last = RELU_LAYERS.indexOf(deepest(layers));
  let largest = 0;
  for (const conv of CONV_LAYERS.slice(0, last + 1)) {
    const relu = `relu${conv.slice(4)}`;
    const [h, w] = featureSize(height, width, relu);
    largest = Math.max(largest, 4 * channelsOf(relu) * h * w);
  }
  return largest;
}

/**
 * The int8 path's factor, for its peak: the float32 calibration graph, whose range observers keep
 * float tensors alive longer, then the int8 session. Measured peak RSS, int8 against float32: 2.1 GB
 * against 1.4 at 512 px, 8.7 against 4.1 GB at 1024 px; this is the upper envelope.
 */
export const INT8_ACTIVATION_FACTOR = 7.8;

export function objectiveBytes(
  width: number,
  height: number,
  layers: readonly string[],
  int8 = false,
): number {
  return (
    BASE_BYTES + (int8 ? INT8_ACTIVATION_FACTOR : ACTIVATION_FACTOR) * activationBytes(width, height, layers)
  );
}

/**
 * Estimated peak bytes of evaluating the objective tile by tile with owned tiles of `tile` px: the
 * two tile graphs (onnxruntime keeps each one's buffers between runs: a session without its arena
 * was measured 33% slower), the content targets of the whole picture, and the picture-sized
 * gradient and input the evaluation adds to the optimiser's vectors.
 */
export function tiledObjectiveBytes(
  width: number,
  height: number,
  layers: readonly string[],
  contentLayers: readonly string[],
  tile: number,
  /** int8's graphs hold more per activation; each region's masked copy of the style layers' features. */
  variant: { int8?: boolean; regions?: number; styleLayers?: readonly string[] } = {},
): number {
  const crop = cropSize(tile, haloFor(layers), width, height);
  const factor = variant.int8 ? INT8_ACTIVATION_FACTOR : ACTIVATION_FACTOR;
  const tiles = activationBytes(crop.cropWidth, crop.cropHeight, layers);
  const regions = regionBytes(
    crop.cropWidth,
    crop.cropHeight,
    variant.styleLayers ?? layers,
    variant.regions ?? 0,
  );
  let targets = 0;
  for (const l of contentLayers) {
    const [h, w] = featureSize(height, width, l);
    targets += 4 * channelsOf(l) * h * w;
  }
  return BASE_BYTES + (factor + FORWARD_FACTOR) * tiles + regions + targets + 2 * 12 * width * height;
}

/**
 * Auto-tiling's smallest tile: twice the halo (a crop then computes 4x the pixels it owns; below
 * that the halo's cost grows fast), and no less than 64 px.
 */
export function minAutoTile(layers: readonly string[]): number {
  return Math.max(64, 2 * haloFor(layers));
}

/**
 * The tile edge for a picture: whole when it fits in the budget, else, of the tiles that fit, the one
 * with the least work: the fewest crop pixels in all (a larger tile is not always better: 1264 px
 * tiles cut a 2048 px picture into 2 x 2 crops of 1424 px, 1.9x the work of 1024 px tiles' 2 x 2
 * crops of 1184 px), the larger tile on a tie. `tile` is undefined when no tile fits.
 */
export function chooseTile(
  width: number,
  height: number,
  layers: readonly string[],
  contentLayers: readonly string[],
  budget: (graphBytes: number) => boolean,
  variant: {
    int8?: boolean;
    regions?: number;
    styleLayers?: readonly string[];
    /** The largest tensor one GPU buffer may hold: a crop's largest activation must fit in it. */
    maxBindingBytes?: number;
    /** False where the caller knows the whole picture cannot be evaluated (its style images are too large). */
    wholeAllowed?: boolean;
  } = {},
): { tiled: boolean; tile?: number } {
  const binding = variant.maxBindingBytes ?? Number.POSITIVE_INFINITY;
  const bound = (w: number, h: number) => largestActivationBytes(w, h, layers) <= binding;
  const whole = variant.wholeAllowed !== false && bound(width, height);
  if (whole && budget(objectiveBytes(width, height, layers))) return { tiled: false };
  const halo = haloFor(layers);
  let best: { tile: number; work: number } | undefined;
  for (
    let t = Math.floor((Math.max(width, height) - 1) / ALIGN) * ALIGN;
    t >= minAutoTile(layers);
    t -= ALIGN
  ) {
    if (!budget(tiledObjectiveBytes(width, height, layers, contentLayers, t, variant))) continue;
    const crop = cropSize(t, halo, width, height);
    if (!bound(crop.cropWidth, crop.cropHeight)) continue;
    const work = tileCount(width, height, crop, halo) * crop.cropWidth * crop.cropHeight;
    if (!best || work < best.work) best = { tile: t, work };
  }
  return best ? { tiled: true, tile: best.tile } : { tiled: true };
}

/** Estimated peak bytes of the forward-only pass that computes a style image's targets. */
export function targetBytes(width: number, height: number, layers: readonly string[]): number {
  return BASE_BYTES + FORWARD_FACTOR * activationBytes(width, height, layers);
}

/** Bytes as a person reads them: 1.4 GB, 820 MB. */
export function formatBytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.round(bytes / 1e6)} MB`;
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
