/** A point on the search line x + t d: the value, the gradient and the directional derivative. */
export interface LineSearchPoint {
  t: number;
  value: number;
  gradient: Float32Array;
  gtd: number;
}

/** Minimiser of the cubic through two points with their slopes, clamped to [lo, hi]; the midpoint if none. */
function cubicMin(a: LineSearchPoint, b: LineSearchPoint, lo: number, hi: number): number {
  const d1 = a.gtd + b.gtd - (3 * (a.value - b.value)) / (a.t - b.t);
  const d2sq = d1 * d1 - a.gtd * b.gtd;
  if (d2sq >= 0) {
    const d2 = Math.sqrt(d2sq);
    const pos =
      a.t <= b.t
        ? b.t - (b.t - a.t) * ((b.gtd + d2 - d1) / (b.gtd - a.gtd + 2 * d2))
        : a.t - (a.t - b.t) * ((a.gtd + d2 - d1) / (a.gtd - b.gtd + 2 * d2));
    if (Number.isFinite(pos)) return Math.min(Math.max(pos, lo), hi);
  }
  return (lo + hi) / 2;
}

/**
 * A step satisfying the strong Wolfe conditions (sufficient decrease c1 = 1e-4,
 * curvature c2 = 0.9), by bracketing then zooming with cubic interpolation
 * (Nocedal & Wright, algorithms 3.5 and 3.6). Returns the best point found
 * when `stop()` says the evaluation budget is spent; t = 0 if no step decreased the value.
 */
export async function strongWolfe(
  at: (t: number) => Promise<LineSearchPoint>,
  start: LineSearchPoint,
  t0: number,
  stop: () => boolean,
  maxEvaluations = 25,
): Promise<LineSearchPoint> {
  const c1 = 1e-4;
  const c2 = 0.9;
  const armijo = (p: LineSearchPoint) => p.value <= start.value + c1 * p.t * start.gtd;
  const curvature = (p: LineSearchPoint) => Math.abs(p.gtd) <= -c2 * start.gtd;
  let best = start;
  const track = (p: LineSearchPoint) => {
    if (p.value < best.value) best = p;
    return p;
  };
  let evaluations = 0;
  let prev = start;
  let t = t0;
  let lo: LineSearchPoint | undefined;
  let hi: LineSearchPoint | undefined;

  while (evaluations < maxEvaluations && !stop()) {
    const p = track(await at(t));
    evaluations++;
    if (!armijo(p) || (prev !== start && p.value >= prev.value)) {
      lo = prev;
      hi = p;
      break;
    }
    if (curvature(p)) return p;
    if (p.gtd >= 0) {
      lo = p;
      hi = prev;
      break;
    }
    const next = cubicMin(prev, p, t + 0.01 * (t - prev.t), t * 10);
    prev = p;
    t = next;
  }
  if (!lo || !hi) return best;

  while (evaluations < maxEvaluations && !stop()) {
    const a = Math.min(lo.t, hi.t);
    const b = Math.max(lo.t, hi.t);
    if (b - a < 1e-9 * Math.max(1, b)) break;
    // Keep the trial away from the bracket's ends, where progress stalls.
    const margin = 0.1 * (b - a);
    const p = track(await at(cubicMin(lo, hi, a + margin, b - margin)));
    evaluations++;
    if (!armijo(p) || p.value >= lo.value) {
      hi = p;
    } else {
      if (curvature(p)) return p;
      if (p.gtd * (hi.t - lo.t) >= 0) hi = lo;
      lo = p;
    }
  }
  return best;
}
