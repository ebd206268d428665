import {
  amaxOutput,
  aminOutput,
  codeMaxOutput,
  codeMinOutput,
  LEVELS,
  type QuantPoint,
  scaleInput,
} from "./int8.js";

export interface DelayedScalingOptions {
  /** Evaluations whose maxima are remembered; the scale covers the largest of them. */
  history?: number;
  /** Factor above that maximum, so that a tensor growing a little between evaluations does not clip. */
  headroom?: number;
}

/** What one saturated output tells of its maximum: at least the edge of the range; assume it doubled. */
const SATURATION_GROWTH = 2;

/**
 * Delayed scaling, as FP8 training does it: each quantised tensor's scale for the next evaluation
 * comes from the maxima observed in the last few, which the graph returns with every evaluation, so
 * choosing scales costs no extra pass. A QLinearConv output can only report that it clipped; its
 * range then grows until it no longer does.
 */
export class DelayedScales {
  private readonly maxima = new Map<string, number[]>();
  private readonly current = new Map<string, number>();
  private readonly history: number;
  private readonly headroom: number;
  /** Tensors that clipped at the last evaluation (a sign that the scales are catching up). */
  saturated: string[] = [];

  constructor(
    readonly points: readonly QuantPoint[],
    options: DelayedScalingOptions = {},
  ) {
    this.history = options.history ?? 4;
    this.headroom = options.headroom ?? 1.1;
  }

  /** Whether every point has a scale (after the calibration evaluation). */
  get ready(): boolean {
    return this.points.every((p) => this.current.has(p.key));
  }

  /** The scale inputs for the next evaluation. */
  feeds(): Record<string, { data: Float32Array; dims: readonly number[] }> {
    const feeds: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const p of this.points) {
      feeds[scaleInput(p.key)] = { data: Float32Array.of(this.current.get(p.key) ?? 1), dims: [] };
    }
    return feeds;
  }

  /** Maxima of the current evaluation's runs so far (a tiled evaluation runs its graph once per tile). */
  private readonly pending = new Map<string, number>();
  private pendingSaturated = new Set<string>();

  /** Records the maxima an evaluation returned (real maxima from a float graph, or codes from the int8 one). */
  observe(outputs: Record<string, { data: Float32Array }>): void {
    this.observeRun(outputs);
    this.commit();
  }

  /** Records one run's maxima; the evaluation's scale comes from the largest of its runs, at commit(). */
  observeRun(outputs: Record<string, { data: Float32Array }>): void {
    for (const p of this.points) {
      const amax = outputs[amaxOutput(p.key)];
      let m: number;
      if (amax) {
        m = Math.max(amax.data[0] as number, -(outputs[aminOutput(p.key)]?.data[0] ?? 0));
      } else {
        const used = this.current.get(p.key) ?? 1;
        const hi = (outputs[codeMaxOutput(p.key)]?.data[0] ?? 0) - (p.kind === "gradient" ? 128 : 0);
        const lo = p.kind === "gradient" ? 128 - (outputs[codeMinOutput(p.key)]?.data[0] ?? 128) : 0;
        const codes = Math.max(hi, lo);
        const edge = p.kind === "gradient" ? codes >= 127 : codes >= 255;
        if (edge) this.pendingSaturated.add(p.key);
        m = (edge ? SATURATION_GROWTH * LEVELS[p.kind] : codes) * used;
      }
      // A tensor that was all zeros says nothing about its range: keep the scale it had.
      if (!(m > 0) || !Number.isFinite(m)) continue;
      this.pending.set(p.key, Math.max(m, this.pending.get(p.key) ?? 0));
    }
  }

  /** Ends an evaluation: its maxima join the history and set the next evaluation's scales. */
  commit(): void {
    this.saturated = this.points.map((p) => p.key).filter((k) => this.pendingSaturated.has(k));
    for (const [key, m] of this.pending) {
      const list = this.maxima.get(key) ?? [];
      list.push(m);
      if (list.length > this.history) list.shift();
      this.maxima.set(key, list);
      const kind = this.points.find((p) => p.key === key)?.kind ?? "activation";
      this.current.set(key, (Math.max(...list) * this.headroom) / LEVELS[kind]);
    }
    this.pending.clear();
    this.pendingSaturated = new Set();
  }
}
