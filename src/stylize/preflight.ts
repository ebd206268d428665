import type { ImageSource } from "../api/inputs.js";
import { StylegramError, UsageError } from "../errors.js";
import { imageFileSize } from "../image/io.js";
import { deepest } from "../network/layers.js";
import { regionBytes } from "../objective/masks.js";
import {
  availableMemory,
  formatBytes,
  HDF5_READER_BYTES,
  objectiveBytes,
  targetBytes,
} from "../objective/memory.js";
import type { ResolvedObjective } from "../objective/options.js";
import { minimumSize } from "../objective/size.js";
import { STYLIZE_DEFAULTS } from "./options.js";

/** The run would not fit in memory; nothing was started. */
export class OutOfMemoryError extends StylegramError {}

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
  /** Styles by region: the number of regions, whose masked features the graph keeps too. */
  regions?: number;
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

  const peakWithout = (longEdge: number) => {
    const c = fitLongEdge(contentSize, longEdge);
    const styleEdge = Math.max(1, Math.round(longEdge * input.styleScale));
    const graph = Math.max(
      objectiveBytes(c.width, c.height, allLayers, input.int8 === true) +
        regionBytes(c.width, c.height, o.styleLayers, input.regions ?? 0),
      ...styleSizes.map((s) => {
        const f = fitLongEdge(s, styleEdge);
        return targetBytes(f.width, f.height, o.styleLayers);
      }),
    );
    const vector = 3 * c.width * c.height * 4;
    const reader = input.hdf5Weights ? HDF5_READER_BYTES : 0;
    return { graph: graph + reader + WORKING_VECTORS * vector, pair: 2 * vector };
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
    return graph + history(longEdge) * pair;
  };

  // The smallest size at which the content and every style image are large enough for the network.
  const fitsNetwork = (size: number) =>
    tooSmall(contentSize, size, allLayers) === undefined &&
    styleSizes.every(
      (s) => tooSmall(s, Math.max(1, Math.round(size * input.styleScale)), o.styleLayers) === undefined,
    );
  const smallestSize = (from: number) => {
    let need = from;
    while (!fitsNetwork(need)) need++;
    return need;
  };
  const scales: ScaleCheck[] = input.sizes.map((size) => {
    const c = fitLongEdge(contentSize, size);
    const small = tooSmall(contentSize, size, allLayers);
    if (small) {
      const need = smallestSize(small.need);
      // A panorama of 1000:1 would need a size no memory holds: then the shape is the problem.
      const fix =
        peak(need) <= available
          ? `use a size of at least ${need} (--size ${need})`
          : `its shape (${contentSize.width}x${contentSize.height}) is too narrow for a size that fits in memory: crop it`;
      throw tooSmallError("the content image", small.got, allLayers, fix);
    }
    styleSizes.forEach((s, i) => {
      const edge = Math.max(1, Math.round(size * input.styleScale));
      const st = tooSmall(s, edge, o.styleLayers);
      if (st) {
        const what = input.styles.length > 1 ? `style image ${i + 1}` : "the style image";
        const scale = Math.ceil((100 * st.need) / size) / 100;
        const need = smallestSize(size);
        throw tooSmallError(
          what,
          st.got,
          o.styleLayers,
          `use a style scale of at least ${scale} (--style-scale ${scale}) or a size of at least ${need} (--size ${need})`,
        );
      }
    });
    return { size, ...c, historySize: history(size), peakBytes: peak(size) };
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
    const historyNote =
      input.historySize !== undefined && input.optimizer === "lbfgs"
        ? `, with ${input.historySize} L-BFGS pairs (a smaller --history needs less)`
        : "";
    throw new OutOfMemoryError(
      `a ${largest.width}x${largest.height} picture needs about ${formatBytes(largest.peakBytes)} of memory${historyNote}${styleNote}${precisionNote}, ` +
        `but ${formatBytes(available)} is available${input.maxMemory === undefined ? "" : " (max memory)"}: ${fix}`,
      { exitCode: 2 },
    );
  }
  return { scales, available };
}

/**
 * The smallest long edge at which an image keeps the deepest layer's minimum on
 * its short side, when `longEdge` is too small for that; undefined when it is large enough.
 */
function tooSmall(
  size: Size,
  longEdge: number,
  layers: readonly string[],
): { got: Size; need: number } | undefined {
  if (layers.length === 0) return undefined;
  const min = minimumSize(layers);
  const shortSide = (edge: number) => {
    const f = fitLongEdge(size, edge);
    return Math.min(f.width, f.height);
  };
  if (shortSide(longEdge) >= min) return undefined;
  let need = longEdge;
  while (shortSide(need) < min) need++;
  return { got: fitLongEdge(size, longEdge), need };
}

function tooSmallError(what: string, got: Size, layers: readonly string[], fix: string): UsageError {
  const min = minimumSize(layers);
  return new UsageError(
    `${what} becomes ${got.width}x${got.height}, too small for layer ${deepest(layers)}, which needs at least ` +
      `${min}x${min} pixels: ${fix}, or use layers that stop earlier (--content-layers, --style-layers)`,
  );
}
