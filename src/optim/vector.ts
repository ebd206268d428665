// Dense vector kernels for the optimisers. Sums are accumulated in float64 (JS numbers),
// so dot products over millions of float32 pixels do not lose precision.

export function dot(a: Float32Array, b: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = a.length;
  const m = n - (n % 4);
  for (let i = 0; i < m; i += 4) {
    s0 += (a[i] as number) * (b[i] as number);
    s1 += (a[i + 1] as number) * (b[i + 1] as number);
    s2 += (a[i + 2] as number) * (b[i + 2] as number);
    s3 += (a[i + 3] as number) * (b[i + 3] as number);
  }
  for (let i = m; i < n; i++) s0 += (a[i] as number) * (b[i] as number);
  return s0 + s1 + s2 + s3;
}

/** y += alpha * x */
export function axpy(alpha: number, x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < y.length; i++) y[i] = (y[i] as number) + alpha * (x[i] as number);
}

export function scale(alpha: number, x: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] = alpha * (x[i] as number);
}

export function sumAbs(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.abs(x[i] as number);
  return s;
}

export function maxAbs(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] as number));
  return m;
}

export function isFiniteVector(x: Float32Array): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i] as number)) return false;
  return true;
}
