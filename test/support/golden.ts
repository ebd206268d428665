import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { compareVectors } from "./compare.js";
import { GOLDEN_DIR } from "./shared.js";

/** One pooling's case in ../shared/golden/golden.json: every term, the total and the gradient files. */
export interface GoldenCase {
  content: Record<string, number>;
  style: Record<string, number>;
  tv: number;
  total: number;
  grads: Record<string, { file: string }>;
}

export interface Golden {
  content_layers: string[];
  style_layers: string[];
  cases: Record<string, GoldenCase>;
}

export function readGolden(): Golden {
  return JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, "golden.json"), "utf8")) as Golden;
}

/** A raw little-endian float32 file of ../shared/golden. */
export function readF32(file: string): Float32Array {
  const b = fs.readFileSync(path.join(GOLDEN_DIR, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** The golden tolerance for gradients: cosine above 0.9999 and relative L2 error below 1e-3. */
export function assertGradientClose(got: Float32Array, expected: Float32Array, what: string): void {
  const { relL2, cosine } = compareVectors(got, expected);
  assert.ok(cosine > 0.9999, `${what}: cosine ${cosine}`);
  assert.ok(relL2 < 1e-3, `${what}: relative L2 error ${relL2}`);
}
