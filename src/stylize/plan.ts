import { type MessagePart, message, OutOfMemoryError, opt, UsageError } from "../errors.js";
import { fitLongEdge, type Size } from "../image/size.js";
import type { ImageSource } from "../image/source.js";
import { deepest } from "../network/layers.js";
import {
  chooseTile,
  formatBytes,
  largestActivationBytes,
  minAutoTile,
  objectiveBytes,
  regionBytes,
  targetBytes,
  tiledObjectiveBytes,
} from "../objective/memory.js";
import type { ResolvedObjective } from "../objective/options.js";
import { minimumSize, neededEdge, sizeForStyleEdge } from "../objective/size.js";
import { ALIGN, cropSize, haloFor, tileCount } from "../objective/tiling.js";
import { LIMITS } from "../options/registry.js";
import type { DeviceRequest } from "../runtime/device.js";
import { type PrecisionRequest, STYLIZE_DEFAULTS } from "./options.js";
import { type Phase, precisionPhases } from "./precision.js";

/**
 * The evaluation plan of a run: for each scale, whole or tiled (with which tile), its L-BFGS history,
 * its memory, the arithmetic of each phase and the relative cost of an evaluation; or the error that
 * names the conflict and the fix. Every caller decides with it: the checks before a run, stylize(),
 * computeLoss(), the time left, the server.
 */

/** Float32 vectors of the image's size that the optimiser holds besides its history (x, d, g, best...). */
const WORKING_VECTORS = 8;
/** The default L-BFGS history shrinks to what memory leaves, down to this many pairs. */
export const MIN_DEFAULT_HISTORY = 5;

export interface ScalePlan {
  size: number;
  width: number;
  height: number;
  /** L-BFGS pairs at this scale: the user's, or what memory leaves (at most 100). */
  historySize: number;
  /** Estimated peak bytes of this scale with that history. */
  peakBytes: number;
  /** The owned tile edge when this scale is evaluated tile by tile (asked for, or what memory needs). */
  tile?: number;
  /** The arithmetic of each phase of this scale's evaluations (with the request's iterations). */
  phases: Phase[];
  /**
   * What one evaluation costs, relative to the other scales': its pixels, and tiled, every crop's
   * pixels, each crop evaluated forward twice and backward once (about 1.5 whole evaluations).
   */
  cost: number;
}

export interface PlanRequest {
  content: ImageSource;
  styles: readonly ImageSource[];
  sizes: readonly number[];
  styleScale: number;
  objective: ResolvedObjective;
  /** The optimiser, whose vectors count; "none" for a single evaluation (computeLoss). */
  optimizer: "lbfgs" | "adam" | "none";
  historySize: number | undefined;
  maxMemory: number | undefined;
  /** Memory that reading the weights costs besides them (Node's HDF5 reader), in bytes. */
  readerBytes?: number;
  /**
   * An image's size (from its header where it is a file); default: an image in memory's own, since a
   * plan reads no files itself (the platform does: Environment.imageSize).
   */
  imageSize?: (src: ImageSource) => Promise<Size>;
  /** Memory a run may use where maxMemory is not given (Environment.availableMemory). */
  availableMemory?: () => number;
  /** Where it runs: "auto" is decided later (it may be a GPU, which runs float32 only). Default "auto". */
  device?: DeviceRequest;
  /** The arithmetic asked for (default STYLIZE_DEFAULTS.precision; a GPU then runs float32). */
  precision?: PrecisionRequest;
  /** Whether `precision` was asked for by the user, rather than the default (a GPU refuses only the former). */
  precisionAsked?: boolean;
  /** Evaluations at each scale (an L-BFGS run never holds more pairs than that); default: unbounded. */
  iterations?: readonly number[];
  /** Tile edge asked for (--tile); undefined: tiles only where the picture would not fit whole. */
  tile?: number;
  /** Styles by region: the number of regions, whose masked features the graph keeps too. */
  regions?: number;
  /** The style images at their own sizes (computeLoss), not resized to the scale. */
  stylesAsGiven?: boolean;
  /** The largest size and style scale the caller accepts (a server's caps), so that advice stays within them. */
  limits?: AdviceLimits;
  /**
   * The most bytes one tensor may take on the device (a WebGPU adapter's maxStorageBufferBindingSize):
   * a picture or style image whose largest activation (conv1's, 64 x H x W floats) is larger is
   * evaluated in tiles whose crops fit. Undefined: no such limit (the CPU).
   */
  maxBindingBytes?: number;
}

export interface AdviceLimits {
  size?: number;
  styleScale?: number;
}

export interface EvaluationPlan {
  scales: ScalePlan[];
  available: number;
  /** The arithmetic the run uses: on a GPU always fp32. */
  precision: PrecisionRequest;
}

/**
 * The combinations that do not work, each with the reason and the fix: the one place that knows them.
 * (int8 and styles by region run in tiles like float32; only int8 needs the CPU.)
 */
const CONFLICTS: { when: (r: PlanRequest) => boolean; error: (r: PlanRequest) => UsageError }[] = [
  {
    when: (r) => r.device === "webgpu" && r.precisionAsked === true && (r.precision ?? "fp32") !== "fp32",
    error: (r) =>
      new UsageError(
        message`${opt("precision", r.precision ?? "")} runs on the CPU only (WebGPU has no int8 convolution): add ${opt("device", "cpu")}, or use ${opt("precision", "fp32")} on the GPU`,
        { option: "precision" },
      ),
  },
];

/** The arithmetic a run uses on a device: a GPU runs float32 (an explicit int8 there is a conflict). */
export function effectivePrecision(
  r: Pick<PlanRequest, "device" | "precision" | "precisionAsked">,
): PrecisionRequest {
  for (const c of CONFLICTS) if (c.when(r as PlanRequest)) throw c.error(r as PlanRequest);
  if (r.device === "webgpu") return "fp32";
  return r.precision ?? STYLIZE_DEFAULTS.precision;
}

/**
 * Plans a run before any work: every image is large enough for the deepest layer at every scale, the
 * combination of device and precision works, and each scale fits in memory (whole, or in tiles).
 * Errors give the numbers and the option that fixes them.
 */
export async function planEvaluation(input: PlanRequest): Promise<EvaluationPlan> {
  const precision = effectivePrecision(input);
  // Where the device is not known yet (auto), int8's memory is counted: the CPU may run it.
  const int8 = precision !== "fp32";
  const sizeOf = input.imageSize ?? inMemorySize;
  const contentSize = await sizeOf(input.content);
  const styleSizes = await Promise.all(input.styles.map(sizeOf));
  const o = input.objective;
  const allLayers = [...o.contentLayers, ...o.styleLayers];
  const available = input.maxMemory ?? input.availableMemory?.() ?? Number.POSITIVE_INFINITY;

  const styleAt = (s: Size, longEdge: number) =>
    input.stylesAsGiven ? s : fitLongEdge(s, Math.max(1, Math.round(longEdge * input.styleScale)));
  const scaleIndex = (longEdge: number) => input.sizes.indexOf(longEdge);
  // An L-BFGS run of n evaluations keeps at most n - 1 pairs.
  const maxPairs = (longEdge: number) => {
    const its = input.iterations?.[scaleIndex(longEdge)];
    return its === undefined ? Number.POSITIVE_INFINITY : Math.max(1, its - 1);
  };
  /** The fixed bytes of a scale besides the objective's graph, and the bytes of one L-BFGS pair. */
  const around = (longEdge: number) => {
    const c = fitLongEdge(contentSize, longEdge);
    const styles = Math.max(
      0,
      ...styleSizes.map((s) => {
        const f = styleAt(s, longEdge);
        return targetBytes(f.width, f.height, o.styleLayers);
      }),
    );
    const vector = 3 * c.width * c.height * 4;
    const reader = input.readerBytes ?? 0;
    const vectors = input.optimizer === "none" ? 1 : WORKING_VECTORS;
    return { c, styles, extra: reader + vectors * vector, pair: 2 * vector };
  };
  const fewestPairs = (longEdge: number) =>
    input.optimizer !== "lbfgs" ? 0 : Math.min(input.historySize ?? MIN_DEFAULT_HISTORY, maxPairs(longEdge));
  const binding = input.maxBindingBytes ?? Number.POSITIVE_INFINITY;
  const halo = haloFor(allLayers);
  /** A tile asked for whose crops hold a tensor larger than one GPU buffer: the largest that fits instead. */
  const checkTileBinding = (c: Size, tile: number) => {
    const crop = cropSize(tile, halo, c.width, c.height);
    const bytes = largestActivationBytes(crop.cropWidth, crop.cropHeight, allLayers);
    if (bytes <= binding) return;
    let fit = tile - ALIGN;
    while (fit > ALIGN) {
      const f = cropSize(fit, halo, c.width, c.height);
      if (largestActivationBytes(f.cropWidth, f.cropHeight, allLayers) <= binding) break;
      fit -= ALIGN;
    }
    throw new UsageError(
      message`tiles of ${tile} px make crops of ${crop.cropWidth}x${crop.cropHeight}, whose largest activation (${formatBytes(bytes)}) is over the most one buffer of this GPU holds (${formatBytes(binding)}): use ${opt("tile", fit)}, or leave ${opt("tile")} out to have tiles chosen`,
      { option: "tile" },
    );
  };
  /** Whole or tiled, and the graph's bytes: tiled only when asked for or when whole does not fit. */
  const layout = (longEdge: number): { tile?: number; graph: number } => {
    const { c, styles, extra, pair } = around(longEdge);
    const regions = input.regions ?? 0;
    const whole = () =>
      Math.max(
        objectiveBytes(c.width, c.height, allLayers, int8) +
          regionBytes(c.width, c.height, o.styleLayers, regions),
        styles,
      );
    const tiled = (tile: number) =>
      tiledObjectiveBytes(c.width, c.height, allLayers, o.contentLayers, tile, {
        int8,
        regions,
        styleLayers: o.styleLayers,
      });
    if (input.tile !== undefined) {
      if (Math.max(c.width, c.height) <= input.tile) return { graph: whole() };
      checkTileBinding(c, input.tile);
      return { tile: input.tile, graph: tiled(input.tile) };
    }
    // One GPU buffer must hold the largest activation of the picture and of each style image.
    const stylesBound = styleSizes.every((s) => {
      const f = styleAt(s, longEdge);
      return largestActivationBytes(f.width, f.height, o.styleLayers) <= binding;
    });
    const wholeBound = stylesBound && largestActivationBytes(c.width, c.height, allLayers) <= binding;
    // Tiled, the style images are cut into the same tiles: their cost is in the tiled estimate.
    const fits = (graph: number) => graph + extra + fewestPairs(longEdge) * pair <= available;
    if (wholeBound && fits(whole())) return { graph: whole() };
    const choice = chooseTile(c.width, c.height, allLayers, o.contentLayers, fits, {
      int8,
      regions,
      styleLayers: o.styleLayers,
      maxBindingBytes: binding,
      wholeAllowed: stylesBound,
    });
    // Nothing fits: the smallest tile's estimate is what the error reports.
    const tile = choice.tile ?? minAutoTile(allLayers);
    // A picture no larger than the tile is evaluated whole (with its style images, however large).
    if (tile >= Math.max(c.width, c.height)) return { graph: whole() };
    return { tile, graph: tiled(tile) };
  };
  const peakWithout = (longEdge: number) => {
    const { extra, pair } = around(longEdge);
    return { graph: layout(longEdge).graph + extra, pair };
  };
  const history = (longEdge: number): number => {
    if (input.optimizer !== "lbfgs") return 0;
    if (input.historySize !== undefined) return input.historySize;
    const { graph, pair } = peakWithout(longEdge);
    const room = Math.floor((available - graph) / pair);
    return Math.max(MIN_DEFAULT_HISTORY, Math.min(STYLIZE_DEFAULTS.historySize, room));
  };
  const peak = (longEdge: number) => {
    const { graph, pair } = peakWithout(longEdge);
    return graph + Math.min(history(longEdge), maxPairs(longEdge)) * pair;
  };

  // The smallest size at which the content and every style image are large enough for the network,
  // computed from the shapes (no search: a 1x4000 style image needs a size of 62000, at once).
  const smallestSize = (from: number) =>
    Math.max(
      from,
      neededEdge(contentSize, allLayers),
      ...(input.stylesAsGiven
        ? []
        : styleSizes.map((s) => sizeForStyleEdge(neededEdge(s, o.styleLayers), input.styleScale))),
    );
  // Advice names only values the caller accepts (a server caps them lower than the library).
  const maxSize = Math.min(input.limits?.size ?? LIMITS.size, LIMITS.size);
  const maxStyleScale = Math.min(input.limits?.styleScale ?? LIMITS.styleScale.max, LIMITS.styleScale.max);
  const fitsMemory = (size: number) => size <= maxSize && peak(size) <= available;
  const costOf = (c: Size, tile: number | undefined) => {
    if (tile === undefined) return c.width * c.height;
    const crop = cropSize(tile, halo, c.width, c.height);
    return 1.5 * tileCount(c.width, c.height, crop, halo) * crop.cropWidth * crop.cropHeight;
  };
  const scales: ScalePlan[] = input.sizes.map((size, k) => {
    const c = fitLongEdge(contentSize, size);
    const small = tooSmall(contentSize, size, allLayers);
    if (small) {
      const need = smallestSize(small.need);
      // A panorama of 1000:1 would need a size no memory holds: then the shape is the problem.
      const fix = fitsMemory(need)
        ? message`use a size of at least ${need} (${opt("size", need)})`
        : [
            `its shape (${contentSize.width}x${contentSize.height}) is too narrow for a size that fits${input.limits ? "" : " in memory"}: crop it`,
          ];
      throw tooSmallError("the content image", small.got, allLayers, fix, "size");
    }
    styleSizes.forEach((s, i) => {
      const st = input.stylesAsGiven
        ? tooSmall(s, Math.max(s.width, s.height), o.styleLayers)
        : tooSmall(s, Math.max(1, Math.round(size * input.styleScale)), o.styleLayers);
      if (st) {
        const what = input.styles.length > 1 ? `style image ${i + 1}` : "the style image";
        const scale = Math.ceil((100 * st.need) / size) / 100;
        const need = smallestSize(size);
        // Only advice that can be followed: a style scale and a size within the limits and the memory.
        const byScale = scale <= maxStyleScale;
        const bySize = fitsMemory(need);
        const fix: MessagePart[] = [
          ...(byScale ? message`use a style scale of at least ${scale} (${opt("styleScale", scale)})` : []),
          ...(byScale && bySize ? [" or "] : []),
          ...(bySize
            ? message`${byScale ? "a" : "use a"} size of at least ${need} (${opt("size", need)})`
            : []),
          ...(byScale || bySize
            ? []
            : [`its shape (${s.width}x${s.height}) is too narrow for a size that fits: crop it`]),
        ];
        throw tooSmallError(what, st.got, o.styleLayers, fix, byScale ? "styleScale" : "size");
      }
    });
    const { tile } = layout(size);
    return {
      size,
      ...c,
      historySize: history(size),
      peakBytes: peak(size),
      ...(tile === undefined ? {} : { tile }),
      phases: precisionPhases(precision, input.iterations?.[k] ?? 1),
      cost: costOf(c, tile),
    };
  });

  const largest = scales.reduce((a, b) => (b.peakBytes > a.peakBytes ? b : a));
  if (largest.peakBytes > available) {
    // The largest long edge that fits, with the same images and options.
    let lo = 0;
    let hi = largest.size;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (peak(mid) <= available) lo = mid;
      else hi = mid;
    }
    const min = minimumSize(allLayers);
    const limit =
      input.maxMemory === undefined
        ? ["close other programs or give it more memory"]
        : message`raise ${opt("maxMemory")}`;
    const fix =
      lo >= min
        ? message`the largest size that fits is ${lo} (${opt("size", lo)})`
        : ["even the smallest picture does not fit: ", ...limit];
    // With a large --style-scale the style images' forward pass, not the picture, is what does not fit.
    const c = fitLongEdge(contentSize, largest.size);
    const styleDominates = styleSizes.some((st) => {
      const f = styleAt(st, largest.size);
      return targetBytes(f.width, f.height, o.styleLayers) > objectiveBytes(c.width, c.height, allLayers);
    });
    const styleNote = styleDominates
      ? message`; most of it is for the style images at ${input.styleScale} x the size (a smaller ${opt("styleScale")} needs less)`
      : [];
    const precisionNote = int8
      ? message`; int8 needs about twice float32's memory while it calibrates (${opt("precision", "fp32")} needs less)`
      : [];
    const tileNote =
      largest.tile === undefined
        ? []
        : input.tile === undefined
          ? [`, even evaluated in tiles of ${largest.tile} px`]
          : message` in tiles of ${largest.tile} px (a smaller ${opt("tile")} needs less)`;
    const historyNote =
      input.historySize !== undefined && input.optimizer === "lbfgs"
        ? message`, with ${input.historySize} L-BFGS pairs (a smaller ${opt("historySize")} needs less)`
        : [];
    throw new OutOfMemoryError(
      [
        `a ${largest.width}x${largest.height} picture needs about ${formatBytes(largest.peakBytes)} of memory`,
        ...tileNote,
        ...historyNote,
        ...styleNote,
        ...precisionNote,
        `, but ${formatBytes(available)} is available${input.maxMemory === undefined ? "" : " (max memory)"}: `,
        ...fix,
      ],
      { exitCode: 2 },
    );
  }
  return { scales, available, precision };
}

async function inMemorySize(src: ImageSource): Promise<Size> {
  if (typeof src === "string")
    throw new Error(`a plan reads no files: give imageSize to read ${src}'s header`);
  return { width: src.width, height: src.height };
}

/**
 * The long edge at which an image is too small for the deepest layer, with the edge it needs;
 * undefined when it is large enough.
 */
function tooSmall(
  size: Size,
  longEdge: number,
  layers: readonly string[],
): { got: Size; need: number } | undefined {
  const need = neededEdge(size, layers);
  return longEdge >= need ? undefined : { got: fitLongEdge(size, longEdge), need };
}

function tooSmallError(
  what: string,
  got: Size,
  layers: readonly string[],
  fix: readonly MessagePart[],
  option: string,
): UsageError {
  const min = minimumSize(layers);
  return new UsageError(
    [
      `${what} becomes ${got.width}x${got.height}, too small for layer ${deepest(layers)}, which needs at least ${min}x${min} pixels: `,
      ...fix,
      ...message`, or use layers that stop earlier (${opt("contentLayers")}, ${opt("styleLayers")})`,
    ],
    { option },
  );
}
