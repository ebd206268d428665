/** An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** ImageNet's per-channel mean in 0..255, subtracted from every input of VGG19. */
export const MEAN_RGB = [123.68, 116.779, 103.939] as const;

/** RGB uint8 HWC -> float32 NCHW in 0..255 minus the mean: the space the objective is optimised in. */
export function toNetworkInput(img: RgbImage): Float32Array {
  const { width, height, data } = img;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(MEAN_RGB[c] as number);
    for (let p = 0; p < plane; p++) out[c * plane + p] = (data[p * 3 + c] as number) - mean;
  }
  return out;
}

/** The inverse of toNetworkInput: rounded and clamped to 0..255. */
export function fromNetworkInput(x: Float32Array, width: number, height: number): RgbImage {
  const plane = width * height;
  if (x.length !== 3 * plane)
    throw new Error(`expected ${3 * plane} values for ${width}x${height}, got ${x.length}`);
  const data = new Uint8Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const mean = MEAN_RGB[c] as number;
    for (let p = 0; p < plane; p++) {
      const v = Math.round((x[c * plane + p] as number) + mean);
      data[p * 3 + c] = Math.min(255, Math.max(0, v));
    }
  }
  return { width, height, data };
}
