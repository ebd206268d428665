import { UsageError } from "../errors.js";
import { CompactHistory } from "./compact.js";
import type { HistoryKind, LbfgsHistory } from "./history.js";
import { type LineSearchPoint, strongWolfe } from "./line-search.js";
import { TwoLoopHistory } from "./two-loop.js";
import {
  type Differentiable,
  EvaluationTracker,
  type MinimizeOptions,
  type MinimizeResult,
} from "./types.js";
import { axpy, dot, maxAbs, sumAbs } from "./vector.js";

export interface LbfgsOptions extends MinimizeOptions {
  /** Number of (s, y) pairs kept; default 100. */
  historySize?: number;
  /** Step length when no line search is used; default 1. */
  learningRate?: number;
  /** "none" (default, as the classic style-transfer implementations run it) or "strong-wolfe". */
  lineSearch?: "none" | "strong-wolfe";
  /** Stop when max |gradient| <= this. Default: never (run all evaluations). */
  gradientTolerance?: number;
  /** Stop when the value or the step changes by less than this. Default: never. */
  changeTolerance?: number;
  /**
   * Largest change of any coordinate in one step, in the units of x; default MAX_STEP (pixels).
   * Infinity gives PyTorch's steps.
   */
  maxStep?: number;
  /**
   * The first step (and each after a restart) moves the largest coordinate by this much, in the
   * units of x. Default: PyTorch's step of 1/|g|_1 (see FIRST_STEP).
   */
  firstStep?: number;
  /** Where the history lives and how it is multiplied; default "onnxruntime" (see HistoryKind). */
  history?: HistoryKind;
  /**
   * Keeps an iterate within bounds, in place (a box: projected steps). The pair L-BFGS learns from
   * is then the step taken. Used without a line search; the start is projected too.
   */
  project?: (x: Float32Array) => void;
  /**
   * Threads for the "onnxruntime" history's products; default 1: they are bound by memory bandwidth,
   * and a second thread measured slower on a busy 2-core machine (docs/lbfgs.md).
   */
  threads?: number;
}

/** The longest Float32Array V8 makes: the compact form keeps its pairs in one. */
const MAX_FLOAT32_ARRAY = 2 ** 32;

/**
 * The history `kind` names, for `m` pairs of `n` numbers. onnxruntime-node is loaded only here, so
 * that the optimiser itself imports nothing a browser lacks.
 */
export async function createHistory(
  kind: HistoryKind,
  m: number,
  n: number,
  threads?: number,
): Promise<LbfgsHistory> {
  if (typeof kind === "function") return kind(m, n);
  // Past 16 GiB of pairs, the two-loop's one array per vector still allocates as it goes, as it always did.
  if (kind === "js" || (kind === "onnxruntime" && 2 * m * n > MAX_FLOAT32_ARRAY))
    return new TwoLoopHistory(m, n);
  if (kind === "onnxruntime") {
    const { OnnxProducts } = await import("./onnx-products.js");
    return new CompactHistory(m, n, new OnnxProducts(n, threads ?? 1));
  }
  throw new UsageError(`L-BFGS history must be "onnxruntime" or "js", got ${String(kind)}`);
}

/** A step that multiplies the value by more than this is taken back. */
const BLOW_UP = 4;

/**
 * Default cap on max |step|, a quarter of the 0..255 pixel range. PyTorch's first step moves the
 * pixels by ~1e-3, under the float32 noise of the gradient and the kinks of ReLU and max-pooling,
 * so the curvature pair it yields is noise: at 96 px the next step moved pixels by ~1e4 and the
 * loss rose x1e7, and backing off by 10s then spent the few iterations of a short run. A capped step
 * keeps the direction and goes where the pair measures real curvature; well-scaled L-BFGS steps on
 * images stay below it.
 */
export const MAX_STEP = 64;

/**
 * Limited-memory BFGS in the variant PyTorch's torch.optim.LBFGS implements (first step scaled by
 * 1/|g|_1, H0 = s.y / y.y, pairs with s.y <= 1e-10 skipped), so that runs compare with reference.py's,
 * except that no step moves a coordinate by more than maxStep. The history's work runs where `history`
 * says: by default the compact form on onnxruntime, the two-loop recursion's H within float rounding.
 * Returns the best point evaluated.
 */
export async function lbfgs(
  f: Differentiable,
  x0: Float32Array,
  options: LbfgsOptions,
): Promise<MinimizeResult> {
  const m = options.historySize ?? 100;
  const lr = options.learningRate ?? 1;
  const maxStep = options.maxStep ?? MAX_STEP;
  if (!(Number.isInteger(m) && m >= 1))
    throw new UsageError(`L-BFGS historySize must be a whole number >= 1, got ${m}`);
  if (!(maxStep > 0)) throw new UsageError(`L-BFGS maxStep must be > 0, got ${maxStep}`);
  const threads = options.threads;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1))
    throw new UsageError(`L-BFGS threads must be a whole number >= 1, got ${threads}`);
  // A run cannot make more pairs than it has evaluations: the compact form reserves no more slots.
  const slots = Math.min(m, Math.max(1, options.maxEvaluations));
  const history = await createHistory(options.history ?? "onnxruntime", slots, x0.length, threads);
  try {
    return await iterate(f, x0, options, history, lr, maxStep);
  } finally {
    await history.dispose();
  }
}

async function iterate(
  f: Differentiable,
  x0: Float32Array,
  options: LbfgsOptions,
  history: LbfgsHistory,
  lr: number,
  maxStep: number,
): Promise<MinimizeResult> {
  const n = x0.length;
  const tracker = new EvaluationTracker(f, options, n);
  const x = Float32Array.from(x0);
  const project = options.project;
  const before = project ? new Float32Array(n) : undefined;
  project?.(x);
  let { value, gradient: g } = await tracker.evaluate(x);
  if (!Number.isFinite(value)) return tracker.result("diverged");
  const converged = () => options.gradientTolerance !== undefined && maxAbs(g) <= options.gradientTolerance;
  if (converged()) return tracker.result("converged");

  let hDiag = 1;
  const d = new Float32Array(n);
  let t = 0;
  let gPrev = g;
  let first = true;

  while (!tracker.exhausted) {
    if (first) {
      for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
      hDiag = 1;
    } else {
      // New pair from the last step: y = g - g_prev, s = t * d.
      const kept = await history.append(t, d, g, gPrev);
      if (kept) hDiag = kept.sy / kept.yy;
      await history.direction(g, hDiag, d);
    }
    let gtd = dot(g, d);
    if (!(gtd < 0)) {
      // Not a descent direction (curvature lost to rounding): restart from steepest descent.
      history.clear();
      for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
      gtd = dot(g, d);
      first = true;
      if (!(gtd < 0)) return tracker.result("converged");
    }
    t = first
      ? options.firstStep === undefined
        ? Math.min(1, 1 / sumAbs(g)) * lr
        : options.firstStep / maxAbs(d)
      : lr;
    // Trust region in the units of x: shrink the step, never turn it.
    const dMax = maxAbs(d);
    if (t * dMax > maxStep) t = maxStep / dMax;
    first = false;
    gPrev = g;
    const valuePrev = value;

    if (options.lineSearch === "strong-wolfe") {
      const start: LineSearchPoint = { t: 0, value, gradient: g, gtd };
      const x0copy = Float32Array.from(x);
      const xt = new Float32Array(n);
      const at = async (step: number): Promise<LineSearchPoint> => {
        for (let i = 0; i < n; i++) xt[i] = (x0copy[i] as number) + step * (d[i] as number);
        const r = await tracker.evaluate(xt);
        return { t: step, value: r.value, gradient: r.gradient, gtd: dot(r.gradient, d) };
      };
      const found = await strongWolfe(at, start, t, () => tracker.exhausted);
      t = found.t;
      for (let i = 0; i < n; i++) x[i] = (x0copy[i] as number) + t * (d[i] as number);
      value = found.value;
      g = found.gradient;
      if (t === 0) return tracker.result("converged");
    } else {
      if (before) before.set(x);
      axpy(t, d, x);
      if (project && before) {
        // The step taken is the projected one: d becomes it, so that the pair and a step back agree.
        project(x);
        for (let i = 0; i < n; i++) d[i] = ((x[i] as number) - (before[i] as number)) / t;
      }
      ({ value, gradient: g } = await tracker.evaluate(x));
      // Without a line search a step can blow up (from a far start, or when the curvature pairs are
      // poor): step back by factors of 10 and forget the history, where PyTorch would carry on diverging.
      let retries = 0;
      while (!(value <= BLOW_UP * Math.abs(valuePrev)) && !tracker.exhausted) {
        if (++retries > 10) return tracker.result("diverged");
        axpy(-0.9 * t, d, x);
        t *= 0.1;
        ({ value, gradient: g } = await tracker.evaluate(x));
        history.clear();
        first = true;
      }
      if (first) {
        // The history was dropped: the next step starts afresh from this point.
        gPrev = g;
        continue;
      }
    }

    if (converged()) return tracker.result("converged");
    const tol = options.changeTolerance;
    if (tol !== undefined && (Math.abs(value - valuePrev) < tol || Math.abs(t) * maxAbs(d) <= tol)) {
      return tracker.result("converged");
    }
  }
  return tracker.result();
}
