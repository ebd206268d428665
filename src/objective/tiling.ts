import { UsageError } from "../errors.js";
import { deepest, RELU_LAYERS, VGG19_ARCH } from "../network/layers.js";

/**
 * How a picture is cut into tiles whose evaluations add up to the whole picture's, exactly.
 *
 * Every loss is a sum over feature positions, so each position is given to one tile (the pixels it
 * *owns*, a rectangle of the grid), and the tile computes its own positions from a *crop*: the owned
 * rectangle plus a halo at least as wide as the distance over which a convolution's zero padding at
 * the crop's edge can change a feature. Crop origins lie on multiples of ALIGN (2^4, four poolings),
 * so that each pooling window of a crop is a pooling window of the whole picture.
 *
 * Every crop has the same size, so one compiled graph serves every tile: where a crop reaches past
 * the picture, masks (1 inside, 0 outside, per pooling level) zero the input of each convolution
 * there, which is what the whole picture's padding does, and drop the positions the whole picture's
 * floored pooling does not have.
 */
export const ALIGN = 16;

const ceilTo = (v: number, m: number) => Math.ceil(v / m) * m;

/**
 * Pixels around an owned rectangle that a tile must see for its owned features at `layers` to equal
 * the whole picture's: each 3x3 convolution moves the wrong values at a crop's edge one position in,
 * each 2x2 pooling halves their count (rounding up), and the count at the deepest layer times its
 * stride is the halo (80 px at relu5_1), rounded up to ALIGN.
 */
export function haloFor(layers: readonly string[]): number {
  if (layers.length === 0) return ALIGN;
  const stop = RELU_LAYERS.indexOf(deepest(layers));
  let wrong = 0;
  let stride = 1;
  let convs = 0;
  for (const layer of VGG19_ARCH) {
    if (layer === "pool") {
      wrong = Math.ceil(wrong / 2);
      stride *= 2;
      continue;
    }
    wrong++;
    if (convs++ === stop) break;
  }
  // TV compares each owned pixel with its right and lower neighbour: at least one pixel.
  return ceilTo(Math.max(1, wrong * stride), ALIGN);
}

/** One tile: where its crop starts in the picture, and the rectangle of pixels it owns. */
export interface Tile {
  /** Top-left corner of the crop, in the picture's pixels (multiples of ALIGN). */
  top: number;
  left: number;
  /** Owned pixels: rows [ownTop, ownBottom), columns [ownLeft, ownRight) of the picture. */
  ownTop: number;
  ownBottom: number;
  ownLeft: number;
  ownRight: number;
}

export interface TilePlan {
  width: number;
  height: number;
  /** Size of every crop (multiples of ALIGN). */
  cropWidth: number;
  cropHeight: number;
  halo: number;
  tiles: Tile[];
}

interface Span {
  origin: number;
  own0: number;
  own1: number;
}

/** The tiles along one axis of length n, for crops of length crop. */
function spans(n: number, crop: number, halo: number): Span[] {
  if (crop >= n) return [{ origin: 0, own0: 0, own1: n }];
  const step = crop - 2 * halo;
  if (step < ALIGN) throw new Error(`tiling: a crop of ${crop} px leaves no room inside a ${halo} px halo`);
  const out: Span[] = [];
  // The last crop may reach past the picture by less than ALIGN (masked); no crop starts before it.
  const lastOrigin = ceilTo(n - crop, ALIGN);
  for (let own0 = 0; own0 < n; own0 += step) {
    out.push({
      origin: Math.max(0, Math.min(own0 - halo, lastOrigin)),
      own0,
      own1: Math.min(n, own0 + step),
    });
  }
  return out;
}

/** How many tiles planTiles makes, without making them (a check weighs thousands of tile sizes). */
export function tileCount(
  width: number,
  height: number,
  crop: { cropWidth: number; cropHeight: number },
  halo: number,
): number {
  const along = (n: number, c: number) => (c >= n ? 1 : Math.ceil(n / (c - 2 * halo)));
  return along(width, crop.cropWidth) * along(height, crop.cropHeight);
}

/** The crop size for owned tiles of `tile` px on a picture of up to `width` x `height`. */
export function cropSize(
  tile: number,
  halo: number,
  width: number,
  height: number,
): { cropWidth: number; cropHeight: number } {
  return {
    cropWidth: Math.min(tile + 2 * halo, ceilTo(width, ALIGN)),
    cropHeight: Math.min(tile + 2 * halo, ceilTo(height, ALIGN)),
  };
}

/** Tiles of a width x height picture, for crops of the given size. */
export function planTiles(
  width: number,
  height: number,
  crop: { cropWidth: number; cropHeight: number },
  halo: number,
): TilePlan {
  const tiles: Tile[] = [];
  for (const r of spans(height, crop.cropHeight, halo)) {
    for (const c of spans(width, crop.cropWidth, halo)) {
      tiles.push({
        top: r.origin,
        left: c.origin,
        ownTop: r.own0,
        ownBottom: r.own1,
        ownLeft: c.own0,
        ownRight: c.own1,
      });
    }
  }
  return { width, height, ...crop, halo, tiles };
}

/** A tile edge as the user gives it: a whole number of pixels, rounded down to ALIGN. */
export function checkTileEdge(tile: number): number {
  if (!(Number.isInteger(tile) && tile >= ALIGN)) {
    throw new UsageError(`the tile edge must be a whole number of pixels >= ${ALIGN}, got ${tile}`);
  }
  return Math.floor(tile / ALIGN) * ALIGN;
}

/** A picture's size at a pooling level (each pooling floors the halving). */
export function levelSize(n: number, level: number): number {
  let v = n;
  for (let i = 0; i < level; i++) v = Math.floor(v / 2);
  return v;
}

/** 1 for the crop's rows (or columns) at a pooling level whose picture position satisfies `inside`. */
function axisMask(cropLength: number, origin: number, level: number, inside: (p: number) => boolean) {
  const s = 2 ** level;
  const out = new Uint8Array(cropLength / s);
  for (let p = 0; p < out.length; p++) out[p] = inside(origin / s + p) ? 1 : 0;
  return out;
}

function outer(rows: Uint8Array, cols: Uint8Array): Float32Array {
  const out = new Float32Array(rows.length * cols.length);
  for (let r = 0; r < rows.length; r++) {
    if (!rows[r]) continue;
    for (let c = 0; c < cols.length; c++) out[r * cols.length + c] = cols[c] as number;
  }
  return out;
}

/** 1 where the crop's position at a pooling level lies in the picture's feature map, 0 elsewhere. */
export function validMask(plan: TilePlan, tile: Tile, level: number): Float32Array {
  const h = levelSize(plan.height, level);
  const w = levelSize(plan.width, level);
  return outer(
    axisMask(plan.cropHeight, tile.top, level, (p) => p < h),
    axisMask(plan.cropWidth, tile.left, level, (p) => p < w),
  );
}

/** 1 where the crop's position at a pooling level is one the tile owns. */
export function ownMask(plan: TilePlan, tile: Tile, level: number): Float32Array {
  const s = 2 ** level;
  // An owned rectangle that ends at the picture's edge owns the feature positions up to the map's edge.
  const end = (own1: number, n: number) => (own1 === n ? levelSize(n, level) : own1 / s);
  const r0 = tile.ownTop / s;
  const r1 = end(tile.ownBottom, plan.height);
  const c0 = tile.ownLeft / s;
  const c1 = end(tile.ownRight, plan.width);
  return outer(
    axisMask(plan.cropHeight, tile.top, level, (p) => p >= r0 && p < r1),
    axisMask(plan.cropWidth, tile.left, level, (p) => p >= c0 && p < c1),
  );
}

/**
 * Copies the crop of a C x H x W planar array (C planes of the picture at some level) into `out`
 * (C x ch x cw), zeros outside the picture.
 */
export function cropPlanes(
  src: Float32Array,
  channels: number,
  h: number,
  w: number,
  top: number,
  left: number,
  ch: number,
  cw: number,
  out: Float32Array,
): Float32Array {
  out.fill(0);
  const rows = Math.max(0, Math.min(ch, h - top));
  const cols = Math.max(0, Math.min(cw, w - left));
  for (let c = 0; c < channels; c++) {
    for (let r = 0; r < rows; r++) {
      const from = c * h * w + (top + r) * w + left;
      out.set(src.subarray(from, from + cols), c * ch * cw + r * cw);
    }
  }
  return out;
}

/** Adds a C x ch x cw crop into a C x H x W planar array at (top, left), dropping what lies outside. */
export function addCropPlanes(
  crop: Float32Array,
  channels: number,
  h: number,
  w: number,
  top: number,
  left: number,
  ch: number,
  cw: number,
  into: Float32Array,
): void {
  const rows = Math.max(0, Math.min(ch, h - top));
  const cols = Math.max(0, Math.min(cw, w - left));
  for (let c = 0; c < channels; c++) {
    for (let r = 0; r < rows; r++) {
      const to = c * h * w + (top + r) * w + left;
      const from = c * ch * cw + r * cw;
      for (let k = 0; k < cols; k++) into[to + k] = (into[to + k] as number) + (crop[from + k] as number);
    }
  }
}

/** Copies the owned rectangle of a crop (C x ch x cw, at a level) into the picture's C x H x W array. */
export function copyOwnedPlanes(
  crop: Float32Array,
  channels: number,
  plan: TilePlan,
  tile: Tile,
  level: number,
  into: Float32Array,
): void {
  const s = 2 ** level;
  const h = levelSize(plan.height, level);
  const w = levelSize(plan.width, level);
  const ch = plan.cropHeight / s;
  const cw = plan.cropWidth / s;
  const r0 = tile.ownTop / s;
  const r1 = tile.ownBottom === plan.height ? h : tile.ownBottom / s;
  const c0 = tile.ownLeft / s;
  const c1 = tile.ownRight === plan.width ? w : tile.ownRight / s;
  const top = tile.top / s;
  const left = tile.left / s;
  for (let c = 0; c < channels; c++) {
    for (let r = r0; r < r1; r++) {
      const from = c * ch * cw + (r - top) * cw + (c0 - left);
      into.set(crop.subarray(from, from + (c1 - c0)), c * h * w + r * w + c0);
    }
  }
}
