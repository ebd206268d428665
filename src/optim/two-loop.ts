import { type LbfgsHistory, MIN_CURVATURE } from "./history.js";
import { axpy, dot } from "./vector.js";

/**
 * The two-loop recursion (Nocedal 1980) in plain JavaScript, one Float32Array per vector, float64 sums:
 * portable and the reference the fast histories are tested against. Reads every pair twice a step
 * and streams d through memory 4 x history times, on one core.
 */
export class TwoLoopHistory implements LbfgsHistory {
  // Oldest first; when full, the oldest buffers are reused for the newest pair.
  private readonly s: Float32Array[] = [];
  private readonly y: Float32Array[] = [];
  private readonly rho: number[] = [];
  private readonly alpha: Float64Array;

  constructor(
    private readonly m: number,
    private readonly n: number,
  ) {
    this.alpha = new Float64Array(m);
  }

  get size(): number {
    return this.s.length;
  }

  async append(t: number, d: Float32Array, g: Float32Array, gPrev: Float32Array) {
    const { s, y, rho, m, n } = this;
    const sNew = s.length === m ? (s.shift() as Float32Array) : new Float32Array(n);
    const yNew = y.length === m ? (y.shift() as Float32Array) : new Float32Array(n);
    if (rho.length === m) rho.shift();
    for (let i = 0; i < n; i++) {
      yNew[i] = (g[i] as number) - (gPrev[i] as number);
      sNew[i] = t * (d[i] as number);
    }
    const sy = dot(yNew, sNew);
    if (!(sy > MIN_CURVATURE)) return undefined;
    s.push(sNew);
    y.push(yNew);
    rho.push(1 / sy);
    return { sy, yy: dot(yNew, yNew) };
  }

  async direction(g: Float32Array, hDiag: number, d: Float32Array): Promise<void> {
    const { s, y, rho, alpha, n } = this;
    for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
    for (let k = s.length - 1; k >= 0; k--) {
      alpha[k] = (rho[k] as number) * dot(s[k] as Float32Array, d);
      axpy(-(alpha[k] as number), y[k] as Float32Array, d);
    }
    for (let i = 0; i < n; i++) d[i] = hDiag * (d[i] as number);
    for (let k = 0; k < s.length; k++) {
      const beta = (rho[k] as number) * dot(y[k] as Float32Array, d);
      axpy((alpha[k] as number) - beta, s[k] as Float32Array, d);
    }
  }

  clear(): void {
    this.s.length = 0;
    this.y.length = 0;
    this.rho.length = 0;
  }

  async dispose(): Promise<void> {}
}
