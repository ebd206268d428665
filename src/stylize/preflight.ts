import type { ImageSource } from "../api/inputs.js";
import { OutOfMemoryError, UsageError } from "../errors.js";
import { imageFileSize } from "../image/io.js";
import { deepest } from "../network/layers.js";
import { regionBytes } from "../objective/masks.js";
import {
  availableMemory,
  chooseTile,
  formatBytes,
  HDF5_READER_BYTES,
  minAutoTile,
  objectiveBytes,
  targetBytes,
  tiledObjectiveBytes,
} from "../objective/memory.js";
import type { ResolvedObjective } from "../objective/options.js";
import { minimumSize } from "../objective/size.js";
import { SIZE_LIMIT, STYLE_SCALE_LIMITS, STYLIZE_DEFAULTS } from "./options.js";

interface Size {
  width: number;
  height: number;
}

/** The size an image of `size` gets when its long edge is resized to `longEdge` (as loadImage does). */
export function fitLongEdge(size: Size, longEdge: number): Size {
  const scale = longEdge / Math.max(size.width, size.height);
  return {
    width: Math.max(1, Math.round(size.width * scale)),
    height: Math.max(1, Math.round(size.height * scale)),
  };
}

/** An image's size from its header (a file is not decoded). */
export async function sourceSize(src: ImageSource): Promise<Size> {
  return typeof src === "string" ? imageFileSize(src) : { width: src.width, height: src.height };
}

/** Float32 vectors of the image's size that the optimiser holds besides its history (x, d, g, best...). */
const WORKING_VECTORS = 8;
/** The default L-BFGS history shrinks to what memory leaves, down to this many pairs. */
export const MIN_DEFAULT_HISTORY = 5;

export interface ScaleCheck {
  size: number;
  width: number;
  height: number;
  /** L-BFGS pairs at this scale: the user's, or what memory leaves (at most 100). */
  historySize: number;
  /** Estimated peak bytes of this scale with that history. */
  peakBytes: number;
  /** The owned tile edge when this scale is evaluated tile by tile (asked for, or what memory needs). */
  tile?: number;
}

export interface PreflightInput {
  content: ImageSource;
  styles: readonly ImageSource[];
  sizes: readonly number[];
  styleScale: number;
  objective: ResolvedObjective;
  optimizer: "lbfgs" | "adam";
  historySize: number | undefined;
  maxMemory: number | undefined;
  /** Whether the weights are read from HDF5 (a Keras file, the cache), which costs memory of its own. */
  hdf5Weights?: boolean;
  /** The run uses the int8 path (precision int8 or mixed), which needs more memory. */
  int8?: boolean;
  /** Evaluations at each scale (an L-BFGS run never holds more pairs than that); default: unbounded. */
  iterations?: readonly number[];
  /** Tile edge asked for (--tile); undefined: tiles only where the picture would not fit whole. */
  tile?: number;
  /** Styles by region: the number of regions, whose masked features the graph keeps too. */
  regions?: number;
  /** The largest size and style scale the caller accepts (a server's caps), so that advice stays within them. */
  limits?: AdviceLimits;
}

export interface AdviceLimits {
  size?: number;
  styleScale?: number;
}

/**
 * Checks a run before any work: every image is large enough for the deepest
 * layer at every scale, and the largest scale fits in memory. Errors give the
 * numbers and the option that fixes them.
 */
export async function preflight(input: PreflightInput): Promise<{ scales: ScaleCheck[]; available: number }> {
  const contentSize = await sourceSize(input.content);
  const styleSizes = await Promise.all(input.styles.map(sourceSize));
  const o = input.objective;
  const allLayers = [...o.contentLayers, ...o.styleLayers];
  const available = input.maxMemory ?? availableMemory();

  const scaleIndex = (longEdge: number) => input.sizes.indexOf(longEdge);
  // An L-BFGS run of n evaluations keeps at most n - 1 pairs.
  const maxPairs = (longEdge: number) => {
    const its = input.iterations?.[scaleIndex(longEdge)];
    return its === undefined ? Number.POSITIVE_INFINITY : Math.max(1, its - 1);
  };
  /** The fixed bytes of a scale besides the objective's graph, and the bytes of one L-BFGS pair. */
  const around = (longEdge: number) => {
    const c = fitLongEdge(contentSize, longEdge);
    const styleEdge = Math.max(1, Math.round(longEdge * input.styleScale));
    const styles = Math.max(
      0,
      ...styleSizes.map((s) => {
        const f = fitLongEdge(s, styleEdge);
        return targetBytes(f.width, f.height, o.styleLayers);
      }),
    );
    const vector = 3 * c.width * c.height * 4;
    const reader = input.hdf5Weights ? HDF5_READER_BYTES : 0;
    return { c, styles, extra: reader + WORKING_VECTORS * vector, pair: 2 * vector };
  };
  const fewestPairs = (longEdge: number) =>
    input.optimizer === "adam" ? 0 : Math.min(input.historySize ?? MIN_DEFAULT_HISTORY, maxPairs(longEdge));
  /** Whole or tiled, and the graph's bytes: tiled only when asked for or when whole does not fit. */
  const layout = (longEdge: number): { tile?: number; graph: number } => {
    const { c, styles, extra, pair } = around(longEdge);
    const whole = () =>
      Math.max(
        objectiveBytes(c.width, c.height, allLayers, input.int8 === true) +
          regionBytes(c.width, c.height, o.styleLayers, input.regions ?? 0),
        styles,
      );
    if (input.tile !== undefined) {
      if (Math.max(c.width, c.height) <= input.tile) return { graph: whole() };
      return {
        tile: input.tile,
        graph: tiledObjectiveBytes(c.width, c.height, allLayers, o.contentLayers, input.tile),
      };
    }
    // Tiled, the style images are cut into the same tiles: their cost is in the tiled estimate.
    const fits = (graph: number) => graph + extra + fewestPairs(longEdge) * pair <= available;
    // int8 and styles by region do not run tiled: a picture too large for them is refused.
    if (fits(whole()) || input.int8 || (input.regions ?? 0) > 0) return { graph: whole() };
    const choice = chooseTile(c.width, c.height, allLayers, o.contentLayers, fits);
    // Nothing fits: the smallest tile's estimate is what the error reports.
    const tile = choice.tile ?? minAutoTile(allLayers);
    // A picture no larger than the tile is evaluated whole (with its style images, however large).
    if (tile >= Math.max(c.width, c.height)) return { graph: whole() };
    return { tile, graph: tiledObjectiveBytes(c.width, c.height, allLayers, o.contentLayers, tile) };
  };
  const peakWithout = (longEdge: number) => {
    const { extra, pair } = around(longEdge);
    return { graph: layout(longEdge).graph + extra, pair };
  };
  const history = (longEdge: number): number => {
    if (input.optimizer === "adam") return 0;
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
      ...styleSizes.map((s) => sizeForStyleEdge(neededEdge(s, o.styleLayers), input.styleScale)),
    );
  // Advice names only values the caller accepts (a server caps them lower than the library).
  const maxSize = Math.min(input.limits?.size ?? SIZE_LIMIT, SIZE_LIMIT);
  const maxStyleScale = Math.min(input.limits?.styleScale ?? STYLE_SCALE_LIMITS.max, STYLE_SCALE_LIMITS.max);
  const fitsMemory = (size: number) => size <= maxSize && peak(size) <= available;
  const scales: ScaleCheck[] = input.sizes.map((size) => {
    const c = fitLongEdge(contentSize, size);
    const small = tooSmall(contentSize, size, allLayers);
    if (small) {
      const need = smallestSize(small.need);
      // A panorama of 1000:1 would need a size no memory holds: then the shape is the problem.
      const fix = fitsMemory(need)
        ? `use a size of at least ${need} (--size ${need})`
        : `its shape (${contentSize.width}x${contentSize.height}) is too narrow for a size that fits${input.limits ? "" : " in memory"}: crop it`;
      throw tooSmallError("the content image", small.got, allLayers, fix);
    }
    styleSizes.forEach((s, i) => {
      const edge = Math.max(1, Math.round(size * input.styleScale));
      const st = tooSmall(s, edge, o.styleLayers);
      if (st) {
        const what = input.styles.length > 1 ? `style image ${i + 1}` : "the style image";
        const scale = Math.ceil((100 * st.need) / size) / 100;
        const need = smallestSize(size);
        // Only advice that can be followed: a style scale and a size within the limits and the memory.
        const fixes = [
          ...(scale <= maxStyleScale
            ? [`use a style scale of at least ${scale} (--style-scale ${scale})`]
            : []),
          ...(fitsMemory(need) ? [`a size of at least ${need} (--size ${need})`] : []),
        ];
        const fix =
          fixes.length > 0
            ? fixes.join(" or ")
            : `its shape (${s.width}x${s.height}) is too narrow for a size that fits: crop it`;
        throw tooSmallError(
          what,
          st.got,
          o.styleLayers,
          fixes.length === 1 ? fix.replace(/^a size/, "use a size") : fix,
        );
      }
    });
    const { tile } = layout(size);
    if (tile !== undefined && (input.regions ?? 0) > 0) {
      throw new UsageError(
        `styles by region (--mask) do not run tiled yet, and a ${c.width}x${c.height} picture is larger than --tile: leave out --tile, or use a smaller --size`,
      );
    }
    if (tile !== undefined && input.int8) {
      throw new UsageError(
        `int8 does not run tiled yet, and a ${c.width}x${c.height} picture ${input.tile === undefined ? "must be evaluated in tiles to fit in memory" : "is larger than --tile"}: ` +
          "use --precision fp32 (tiling is then automatic), or a smaller --size",
      );
    }
    return {
      size,
      ...c,
      historySize: history(size),
      peakBytes: peak(size),
      ...(tile === undefined ? {} : { tile }),
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
      input.maxMemory === undefined ? "close other programs or give it more memory" : "raise --max-memory";
    const fix =
      lo >= min
        ? `the largest size that fits is ${lo} (--size ${lo})`
        : `even the smallest picture does not fit: ${limit}`;
    // With a large --style-scale the style images' forward pass, not the picture, is what does not fit.
    const c = fitLongEdge(contentSize, largest.size);
    const styleEdge = Math.max(1, Math.round(largest.size * input.styleScale));
    const styleDominates = styleSizes.some((st) => {
      const f = fitLongEdge(st, styleEdge);
      return targetBytes(f.width, f.height, o.styleLayers) > objectiveBytes(c.width, c.height, allLayers);
    });
    const styleNote = styleDominates
      ? `; most of it is for the style images at ${input.styleScale} x the size (a smaller --style-scale needs less)`
      : "";
    const precisionNote = input.int8
      ? "; int8 needs about twice float32's memory while it calibrates (--precision fp32 needs less)"
      : "";
    const tileNote =
      largest.tile === undefined
        ? ""
        : input.tile === undefined
          ? `, even evaluated in tiles of ${largest.tile} px`
          : ` in tiles of ${largest.tile} px (a smaller --tile needs less)`;
    const historyNote =
      input.historySize !== undefined && input.optimizer === "lbfgs"
        ? `, with ${input.historySize} L-BFGS pairs (a smaller --history needs less)`
        : "";
    throw new OutOfMemoryError(
      `a ${largest.width}x${largest.height} picture needs about ${formatBytes(largest.peakBytes)} of memory${tileNote}${historyNote}${styleNote}${precisionNote}, ` +
        `but ${formatBytes(available)} is available${input.maxMemory === undefined ? "" : " (max memory)"}: ${fix}`,
      { exitCode: 2 },
    );
  }
  return { scales, available };
}

/** The smallest long edge at which an image keeps the deepest layer's minimum on its short side. */
export function neededEdge(size: Size, layers: readonly string[]): number {
  if (layers.length === 0) return 1;
  const min = minimumSize(layers);
  const long = Math.max(size.width, size.height);
  const short = Math.min(size.width, size.height);
  // fitLongEdge rounds short * edge / long: it reaches min once that is min - 1/2 (floats: check and step).
  let edge = Math.max(1, Math.ceil(((min - 0.5) * long) / short));
  while (edge > 1 && shortSideAt(size, edge - 1) >= min) edge--;
  while (shortSideAt(size, edge) < min) edge++;
  return edge;
}

function shortSideAt(size: Size, longEdge: number): number {
  const f = fitLongEdge(size, longEdge);
  return Math.min(f.width, f.height);
}

/** The smallest output size whose style edge, round(size * styleScale), is at least `edge`. */
export function sizeForStyleEdge(edge: number, styleScale: number): number {
  if (edge <= 1) return 1;
  let size = Math.max(1, Math.ceil((edge - 0.5) / styleScale));
  if (!Number.isFinite(size) || size > Number.MAX_SAFE_INTEGER) return Number.POSITIVE_INFINITY;
  while (size > 1 && Math.round((size - 1) * styleScale) >= edge) size--;
  while (Math.round(size * styleScale) < edge) size++;
  return size;
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

function tooSmallError(what: string, got: Size, layers: readonly string[], fix: string): UsageError {
  const min = minimumSize(layers);
  return new UsageError(
    `${what} becomes ${got.width}x${got.height}, too small for layer ${deepest(layers)}, which needs at least ` +
      `${min}x${min} pixels: ${fix}, or use layers that stop earlier (--content-layers, --style-layers)`,
  );
}
