/** A differentiable function of a vector: its value and gradient at x. */
export type Differentiable = (x: Float32Array) => Promise<{ value: number; gradient: Float32Array }>;

export interface EvaluationInfo {
  /** 1-based count of function evaluations so far. */
  evaluation: number;
  /** The value at the point just evaluated. */
  value: number;
  /** The best point seen so far and its value (what a snapshot should show). */
  best: Float32Array;
  bestValue: number;
  /** Where the time of this iteration went, in seconds (see IterationTiming). */
  timing: IterationTiming;
}

/**
 * An iteration's time, split: the objective's evaluation, the optimiser's own work since the last
 * evaluation (its step and history), and the caller's callback of the iteration before (progress,
 * snapshots), so that the three add up to the time between two evaluations.
 */
export interface IterationTiming {
  objective: number;
  optimizer: number;
  other: number;
}

export interface MinimizeOptions {
  /** Stop after this many function evaluations. */
  maxEvaluations: number;
  /** Called after every evaluation; may be async (it is awaited). */
  onEvaluation?: (info: EvaluationInfo) => void | Promise<void>;
  /** Stops the optimisation at the next evaluation boundary. */
  signal?: AbortSignal;
  /** Asked after each evaluation: true ends the run as converged (a stop rule of the caller's). */
  converged?: (info: EvaluationInfo) => boolean;
}

/** "diverged": the value became infinite or NaN, or exploded and backtracking could not recover. */
export type StopReason = "max-evaluations" | "aborted" | "converged" | "diverged";

export interface MinimizeResult {
  /** The best point found (lowest value evaluated). */
  x: Float32Array;
  value: number;
  evaluations: number;
  reason: StopReason;
}

/** Keeps the best point seen and counts evaluations, reporting each one. */
export class EvaluationTracker {
  evaluations = 0;
  best: Float32Array;
  bestValue = Number.POSITIVE_INFINITY;

  constructor(
    private readonly f: Differentiable,
    private readonly options: MinimizeOptions,
    size: number,
  ) {
    this.best = new Float32Array(size);
  }

  /** The caller's stop rule said the run has converged. */
  private done = false;

  get exhausted(): boolean {
    return (
      this.done || this.evaluations >= this.options.maxEvaluations || this.options.signal?.aborted === true
    );
  }

  get reason(): StopReason {
    return this.options.signal?.aborted ? "aborted" : this.done ? "converged" : "max-evaluations";
  }

  /** When the previous evaluation's callback returned, and how long that callback took (ms). */
  private lastEnd: number | undefined;
  private lastCallback = 0;

  async evaluate(x: Float32Array): Promise<{ value: number; gradient: Float32Array }> {
    const started = performance.now();
    const r = await this.f(x);
    const evaluated = performance.now();
    this.evaluations++;
    if (r.value < this.bestValue) {
      this.bestValue = r.value;
      this.best.set(x);
    }
    const info: EvaluationInfo = {
      evaluation: this.evaluations,
      value: r.value,
      best: this.best,
      bestValue: this.bestValue,
      timing: {
        objective: (evaluated - started) / 1000,
        optimizer: this.lastEnd === undefined ? 0 : (started - this.lastEnd) / 1000,
        other: this.lastCallback / 1000,
      },
    };
    await this.options.onEvaluation?.(info);
    if (this.options.converged?.(info)) this.done = true;
    this.lastEnd = performance.now();
    this.lastCallback = this.lastEnd - evaluated;
    return r;
  }

  result(reason: StopReason = this.reason): MinimizeResult {
    return { x: this.best, value: this.bestValue, evaluations: this.evaluations, reason };
  }
}
