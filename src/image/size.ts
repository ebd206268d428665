/** A width and a height in pixels. */
export interface Size {
  width: number;
  height: number;
}

export interface LoadOptions {
  /** Resize so that the longer edge has this many pixels (high-quality Lanczos); omitted: keep the size. */
  longEdge?: number;
  /** Resize to exactly this size, ignoring the aspect ratio (for benchmarks and tests). */
  exact?: { width: number; height: number };
  /** What transparent pixels are flattened onto (default white; masks use black: transparent is outside). */
  background?: string;
}

/** The size an image of `size` gets when its long edge is resized to `longEdge` (as loadImage does). */
export function fitLongEdge(size: Size, longEdge: number): Size {
  const scale = longEdge / Math.max(size.width, size.height);
  return {
    width: Math.max(1, Math.round(size.width * scale)),
    height: Math.max(1, Math.round(size.height * scale)),
  };
}

/** The most pixels an input may decode to (sharp's default, 0x3FFF squared): refuses decompression bombs. */
export const MAX_INPUT_PIXELS = 0x3fff * 0x3fff;
