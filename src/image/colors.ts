import type { RgbImage } from "./image.js";

// BT.601 full-range YCbCr, as JPEG uses.
const clamp = (v: number) => Math.min(255, Math.max(0, Math.round(v)));

/**
 * Luminance-only transfer: the luminance of `stylized` with the chroma of
 * `original`, so the result keeps the content photo's colours (Gatys et al.,
 * "Preserving Color in Neural Artistic Style Transfer").
 */
export function keepOriginalColors(stylized: RgbImage, original: RgbImage): RgbImage {
  if (stylized.width !== original.width || stylized.height !== original.height) {
    throw new Error("keepOriginalColors: images differ in size");
  }
  const out = new Uint8Array(stylized.data.length);
  for (let p = 0; p < out.length; p += 3) {
    const y =
      0.299 * (stylized.data[p] as number) +
      0.587 * (stylized.data[p + 1] as number) +
      0.114 * (stylized.data[p + 2] as number);
    const r0 = original.data[p] as number;
    const g0 = original.data[p + 1] as number;
    const b0 = original.data[p + 2] as number;
    const cb = -0.168736 * r0 - 0.331264 * g0 + 0.5 * b0;
    const cr = 0.5 * r0 - 0.418688 * g0 - 0.081312 * b0;
    out[p] = clamp(y + 1.402 * cr);
    out[p + 1] = clamp(y - 0.344136 * cb - 0.714136 * cr);
    out[p + 2] = clamp(y + 1.772 * cb);
  }
  return { width: stylized.width, height: stylized.height, data: out };
}

/** Per-pixel chroma (Cb, Cr) of an image, for tests and diagnostics. */
export function chroma(img: RgbImage): Float32Array {
  const out = new Float32Array((img.data.length / 3) * 2);
  for (let p = 0, q = 0; p < img.data.length; p += 3, q += 2) {
    const r = img.data[p] as number;
    const g = img.data[p + 1] as number;
    const b = img.data[p + 2] as number;
    out[q] = -0.168736 * r - 0.331264 * g + 0.5 * b;
    out[q + 1] = 0.5 * r - 0.418688 * g - 0.081312 * b;
  }
  return out;
}
