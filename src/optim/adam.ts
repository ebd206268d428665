import {
  type Differentiable,
  EvaluationTracker,
  type MinimizeOptions,
  type MinimizeResult,
} from "./types.js";

export interface AdamOptions extends MinimizeOptions {
  /** Step size in the units of x (pixel values 0..255 in stylegram); default 10. */
  learningRate?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Keeps an iterate within bounds, in place (projected steps); the start is projected too. */
  project?: (x: Float32Array) => void;
}

/** A value this many times the first one means the steps are far too large. */
const EXPLOSION = 1e6;

/** Adam (Kingma & Ba) with bias correction; one evaluation per step. Returns the best point evaluated. */
export async function adam(
  f: Differentiable,
  x0: Float32Array,
  options: AdamOptions,
): Promise<MinimizeResult> {
  const lr = options.learningRate ?? 10;
  const b1 = options.beta1 ?? 0.9;
  const b2 = options.beta2 ?? 0.999;
  const eps = options.epsilon ?? 1e-8;
  if (!(lr > 0)) throw new RangeError("Adam learning rate must be > 0");
  const n = x0.length;
  const tracker = new EvaluationTracker(f, options, n);
  const x = Float32Array.from(x0);
  options.project?.(x);
  const m = new Float32Array(n);
  const v = new Float32Array(n);
  let step = 0;
  let firstValue: number | undefined;
  while (!tracker.exhausted) {
    const { value, gradient: g } = await tracker.evaluate(x);
    firstValue ??= value;
    if (!Number.isFinite(value) || Math.abs(value) > EXPLOSION * Math.abs(firstValue))
      return tracker.result("diverged");
    if (tracker.exhausted) break;
    step++;
    const c1 = 1 - b1 ** step;
    const c2 = 1 - b2 ** step;
    for (let i = 0; i < n; i++) {
      const gi = g[i] as number;
      const mi = b1 * (m[i] as number) + (1 - b1) * gi;
      const vi = b2 * (v[i] as number) + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      x[i] = (x[i] as number) - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
    }
    options.project?.(x);
  }
  return tracker.result();
}
