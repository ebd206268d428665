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

/** The mean colour and the 3x3 colour covariance (row-major) of a set of RGB pixels, in 0..255 units. */
export interface ColorStats {
  mean: [number, number, number];
  cov: number[];
}

/**
 * Mean and covariance of interleaved RGB values, each pixel weighted by `weights` (one per pixel,
 * >= 0; a mask's values) when given: the statistics of a region. Computed in float64.
 */
export function colorStats(rgb: ArrayLike<number>, weights?: ArrayLike<number>): ColorStats {
  const n = rgb.length / 3;
  if (weights !== undefined && weights.length !== n)
    throw new Error(`colorStats: ${weights.length} weights for ${n} pixels`);
  let total = 0;
  let m0 = 0;
  let m1 = 0;
  let m2 = 0;
  for (let p = 0; p < n; p++) {
    const w = weights === undefined ? 1 : (weights[p] as number);
    if (w === 0) continue;
    total += w;
    m0 += w * (rgb[3 * p] as number);
    m1 += w * (rgb[3 * p + 1] as number);
    m2 += w * (rgb[3 * p + 2] as number);
  }
  if (!(total > 0)) throw new Error("colorStats: no pixel has a weight above 0");
  const mean: [number, number, number] = [m0 / total, m1 / total, m2 / total];
  // The six distinct entries of the symmetric covariance: rr, rg, rb, gg, gb, bb.
  let rr = 0;
  let rg = 0;
  let rb = 0;
  let gg = 0;
  let gb = 0;
  let bb = 0;
  for (let p = 0; p < n; p++) {
    const w = weights === undefined ? 1 : (weights[p] as number);
    if (w === 0) continue;
    const d0 = (rgb[3 * p] as number) - mean[0];
    const d1 = (rgb[3 * p + 1] as number) - mean[1];
    const d2 = (rgb[3 * p + 2] as number) - mean[2];
    rr += w * d0 * d0;
    rg += w * d0 * d1;
    rb += w * d0 * d2;
    gg += w * d1 * d1;
    gb += w * d1 * d2;
    bb += w * d2 * d2;
  }
  const cov = [rr, rg, rb, rg, gg, gb, rb, gb, bb];
  return { mean, cov: cov.map((v) => v / total) };
}

/**
 * Eigen-decomposition of a symmetric 3x3 matrix by cyclic Jacobi rotations (written here: 3x3 needs
 * no linear-algebra library). Returns the eigenvalues and the eigenvectors as the columns of a
 * row-major 3x3 matrix, so that m = V diag(values) V^T.
 */
export function symmetricEigen3(m: readonly number[]): { values: number[]; vectors: number[] } {
  const a = [...m];
  const v = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const at = (i: number, j: number) => a[3 * i + j] as number;
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = at(0, 1) ** 2 + at(0, 2) ** 2 + at(1, 2) ** 2;
    const scale = at(0, 0) ** 2 + at(1, 1) ** 2 + at(2, 2) ** 2 + off;
    if (off <= 1e-30 * scale || off === 0) break;
    for (const [p, q] of [
      [0, 1],
      [0, 2],
      [1, 2],
    ] as const) {
      const apq = at(p, q);
      if (apq === 0) continue;
      const theta = (at(q, q) - at(p, p)) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1);
      const s = t * c;
      // a <- J^T a J, with J the rotation in the (p, q) plane; v <- v J.
      for (let k = 0; k < 3; k++) {
        const akp = at(k, p);
        const akq = at(k, q);
        a[3 * k + p] = c * akp - s * akq;
        a[3 * k + q] = s * akp + c * akq;
      }
      for (let k = 0; k < 3; k++) {
        const apk = at(p, k);
        const aqk = at(q, k);
        a[3 * p + k] = c * apk - s * aqk;
        a[3 * q + k] = s * apk + c * aqk;
      }
      for (let k = 0; k < 3; k++) {
        const vkp = v[3 * k + p] as number;
        const vkq = v[3 * k + q] as number;
        v[3 * k + p] = c * vkp - s * vkq;
        v[3 * k + q] = s * vkp + c * vkq;
      }
    }
  }
  return { values: [at(0, 0), at(1, 1), at(2, 2)], vectors: v };
}

/** f applied to a symmetric matrix's eigenvalues: V diag(f(values)) V^T. */
function symmetricFunction(m: readonly number[], f: (value: number) => number): number[] {
  const { values, vectors: v } = symmetricEigen3(m);
  const fv = values.map(f);
  const out = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++)
        s += (v[3 * i + k] as number) * (fv[k] as number) * (v[3 * j + k] as number);
      out[3 * i + j] = s;
    }
  return out;
}

function matmul3(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += (a[3 * i + k] as number) * (b[3 * k + j] as number);
      out[3 * i + j] = s;
    }
  return out;
}

/**
 * Eigenvalues of the covariance that is inverted are held at least this fraction of its largest one:
 * a painting with (almost) no spread in some colour direction (a grey one, say) would otherwise have
 * its JPEG noise in that direction blown up into coloured speckle. Natural images' smallest colour
 * eigenvalue is well above it, so for them the match is exact.
 */
const EIGENVALUE_FLOOR = 1e-3;

/**
 * The affine colour map x -> A (x - from.mean) + to.mean that gives pixels with statistics `from` the
 * mean and covariance of `to` (A from.cov A^T = to.cov): Gatys et al.'s colour histogram matching
 * ("Controlling Perceptual Factors in Neural Style Transfer", section 5.2), in the variant with
 * symmetric matrix square roots, A = to.cov^(1/2) from.cov^(-1/2), which is the 3D colour matching of
 * Image Analogies and what the authors' own code uses by default (its "pca" mode). We chose it over the
 * paper's other variant, A = chol(to.cov) chol(from.cov)^-1, because the Cholesky factor depends on the
 * order of the channels (R first): its result changes when the colour axes are permuted or rotated,
 * while the square roots commute with any rotation of colour space, so no channel is privileged.
 */
export function colorTransfer(from: ColorStats, to: ColorStats): { matrix: number[]; offset: number[] } {
  const largest = Math.max(...symmetricEigen3(from.cov).values, 0);
  const floor = Math.max(EIGENVALUE_FLOOR * largest, 1e-9);
  const invSqrtFrom = symmetricFunction(from.cov, (l) => 1 / Math.sqrt(Math.max(l, floor)));
  const sqrtTo = symmetricFunction(to.cov, (l) => Math.sqrt(Math.max(l, 0)));
  const matrix = matmul3(sqrtTo, invSqrtFrom);
  // offset = to.mean - A from.mean, so that the map is x -> A x + offset.
  const offset = [0, 1, 2].map(
    (i) =>
      to.mean[i as 0 | 1 | 2] -
      [0, 1, 2].reduce((s, k) => s + (matrix[3 * i + k] as number) * from.mean[k as 0 | 1 | 2], 0),
  );
  return { matrix, offset };
}

/** x -> A x + offset on every pixel of interleaved RGB values, in float64 then float32. */
export function applyColorTransfer(
  rgb: ArrayLike<number>,
  t: { matrix: readonly number[]; offset: readonly number[] },
): Float32Array {
  const out = new Float32Array(rgb.length);
  const m = t.matrix;
  for (let p = 0; p < rgb.length; p += 3) {
    const r = rgb[p] as number;
    const g = rgb[p + 1] as number;
    const b = rgb[p + 2] as number;
    for (let c = 0; c < 3; c++)
      out[p + c] =
        (m[3 * c] as number) * r +
        (m[3 * c + 1] as number) * g +
        (m[3 * c + 2] as number) * b +
        (t.offset[c] as number);
  }
  return out;
}

/**
 * Colour histogram matching (`colors: "histogram"`): the style image recoloured so that its mean
 * colour and colour covariance are the photo's, before the transfer, so that the picture takes the
 * painting's strokes and keeps the photo's colours. With weights (a region's mask, one value per
 * pixel), the statistics are those of the region: the style's where its style mask is white, the
 * photo's where its mask is. Values are rounded and clipped to 0..255, which changes the statistics
 * only where the map would push a colour out of range.
 */
export function matchColorHistogram(
  style: RgbImage,
  content: RgbImage,
  weights: { style?: ArrayLike<number>; content?: ArrayLike<number> } = {},
): RgbImage {
  const t = colorTransfer(colorStats(style.data, weights.style), colorStats(content.data, weights.content));
  const mapped = applyColorTransfer(style.data, t);
  const data = new Uint8Array(mapped.length);
  for (let i = 0; i < mapped.length; i++) data[i] = clamp(mapped[i] as number);
  return { width: style.width, height: style.height, data };
}
