/**
 * The L-BFGS history: the (s, y) curvature pairs and the product d = -H g they define. All of an
 * L-BFGS step's O(history x n) work happens behind this interface, so that the optimiser is one copy
 * and the arithmetic can be plain JavaScript (portable) or threaded, vectorised kernels (fast).
 * See docs/lbfgs.md.
 */
export interface LbfgsHistory {
  /** Pairs held. */
  readonly size: number;
  /**
   * Records the pair s = t d, y = g - gPrev. When the history is full the oldest pair is dropped first
   * (even if the new one is then refused); the pair is kept only if s.y > MIN_CURVATURE.
   * Returns s.y and y.y when it was kept.
   */
  append(
    t: number,
    d: Float32Array,
    g: Float32Array,
    gPrev: Float32Array,
  ): Promise<{ sy: number; yy: number } | undefined>;
  /** d = -H g, where H is the inverse-Hessian approximation from the pairs with H0 = hDiag I. */
  direction(g: Float32Array, hDiag: number, d: Float32Array): Promise<void>;
  /** Forgets every pair. */
  clear(): void;
  /** Frees what the history holds outside the JavaScript heap. */
  dispose(): Promise<void>;
}

/** Pairs with s.y at or below this are skipped (PyTorch's threshold): they carry no usable curvature. */
export const MIN_CURVATURE = 1e-10;

/**
 * How the history is stored and multiplied: "onnxruntime" (the default) keeps it in the compact form
 * and runs its products as onnxruntime MatMuls, threaded and vectorised; "js" runs the classic
 * two-loop recursion in plain JavaScript (portable, float64 sums); a function makes a history of
 * its own for `historySize` pairs of `n` numbers (the browser's onnxruntime-web, for instance).
 */
export type HistoryKind = "onnxruntime" | "js" | ((historySize: number, n: number) => LbfgsHistory);
