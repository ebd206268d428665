/** Relative L2 error and cosine similarity of a against a reference b. */
export function compareVectors(a: Float32Array, b: Float32Array): { relL2: number; cosine: number } {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
    diff += (x - y) ** 2;
  }
  return { relL2: Math.sqrt(diff / nb), cosine: dot / Math.sqrt(na * nb) };
}

export function relativeError(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
}
