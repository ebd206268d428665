import { type LbfgsHistory, MIN_CURVATURE } from "./history.js";
import { axpy, dot } from "./vector.js";

/**
 * The two products over the stored pairs, the only O(history x n) work of a compact-form step.
 * `h` holds the pairs as rows of n numbers; only its first `rows` rows are read.
 */
export interface PairProducts {
  /** out[r] = h[r] . g */
  dots(h: Float32Array, rows: number, g: Float32Array): Promise<ArrayLike<number>>;
  /** d = sum_r c[r] h[r] - gamma g */
  combine(
    h: Float32Array,
    rows: number,
    c: Float32Array,
    gamma: number,
    g: Float32Array,
    d: Float32Array,
  ): Promise<void>;
  dispose(): Promise<void>;
}

/** The products in plain JavaScript, float64 dots: the compact form's arithmetic without onnxruntime's. */
export class JsProducts implements PairProducts {
  constructor(private readonly n: number) {}

  async dots(h: Float32Array, rows: number, g: Float32Array): Promise<Float64Array> {
    const { n } = this;
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) out[r] = dot(h.subarray(r * n, (r + 1) * n), g);
    return out;
  }

  async combine(
    h: Float32Array,
    rows: number,
    c: Float32Array,
    gamma: number,
    g: Float32Array,
    d: Float32Array,
  ) {
    const { n } = this;
    for (let i = 0; i < n; i++) d[i] = -gamma * (g[i] as number);
    for (let r = 0; r < rows; r++) {
      const cr = c[r] as number;
      if (cr !== 0) axpy(cr, h.subarray(r * n, (r + 1) * n), d);
    }
  }

  async dispose(): Promise<void> {}
}

/**
 * The L-BFGS history in the compact form of Byrd, Nocedal and Schnabel (1994):
 *   H = gamma I + [S  gamma Y] [[R^-T (D + gamma Y'Y) R^-1, -R^-T], [-R^-1, 0]] [S'; gamma Y'],
 * R the upper triangle of S'Y, D its diagonal. With a = S'g and b = Y'g, one product over the pairs,
 *   d = -H g = -gamma g - S u + gamma Y w,  R w = a,  R' u = (D + gamma Y'Y) w - gamma b,
 * a second one. The new entries of S'Y and Y'Y come from the dots already taken:
 * s_i.y_new = s_i.g - s_i.gPrev, so each step reads the pairs twice, in two long streaming products.
 * Same H as the two-loop recursion; the small systems are solved in float64.
 */
export class CompactHistory implements LbfgsHistory {
  /** Slot q holds s in row 2q and y in row 2q + 1. Pages are committed as rows are first written. */
  private readonly h: Float32Array;
  /** Slots of the pairs held, oldest first. */
  private readonly order: number[] = [];
  private readonly active: Uint8Array;
  /** Slots [0, used) have been written since the last clear: the products read their rows. */
  private used = 0;
  /** sy[i m + j] = s_i . y_j and yy[i m + j] = y_i . y_j, by slot. */
  private readonly sy: Float64Array;
  private readonly yy: Float64Array;
  /** s_q . lastG and y_q . lastG for every pair held (gradients are never changed once passed in). */
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  private lastG: Float32Array | undefined;
  private readonly c: Float32Array;
  private readonly w: Float64Array;
  private readonly u: Float64Array;

  constructor(
    private readonly m: number,
    private readonly n: number,
    private readonly products: PairProducts,
  ) {
    this.h = new Float32Array(2 * m * n);
    this.active = new Uint8Array(m);
    this.sy = new Float64Array(m * m);
    this.yy = new Float64Array(m * m);
    this.a = new Float64Array(m);
    this.b = new Float64Array(m);
    this.c = new Float32Array(2 * m);
    this.w = new Float64Array(m);
    this.u = new Float64Array(m);
  }

  get size(): number {
    return this.order.length;
  }

  async append(t: number, d: Float32Array, g: Float32Array, gPrev: Float32Array) {
    const { m, n, order, active } = this;
    // The new entries are derived from the dots with gPrev (the last direction's g in a run).
    if (order.length > 0 && this.lastG !== gPrev) await this.takeDots(gPrev);
    let q: number;
    if (order.length === m) {
      q = order.shift() as number;
      active[q] = 0;
    } else {
      q = active.indexOf(0);
      if (q === this.used) this.used++;
    }
    const s = this.h.subarray(2 * q * n, (2 * q + 1) * n);
    const y = this.h.subarray((2 * q + 1) * n, (2 * q + 2) * n);
    for (let i = 0; i < n; i++) {
      y[i] = (g[i] as number) - (gPrev[i] as number);
      s[i] = t * (d[i] as number);
    }
    const sy = dot(y, s);
    if (!(sy > MIN_CURVATURE)) {
      // Rows of a free slot below `used` are still read, with coefficient 0: keep them finite.
      if (q === this.used - 1) this.used--;
      else this.h.fill(0, 2 * q * n, (2 * q + 2) * n);
      return undefined;
    }
    const yy = dot(y, y);
    this.sy[q * m + q] = sy;
    this.yy[q * m + q] = yy;
    // s_p . y = s_p . g - s_p . gPrev and y_p . y likewise, from the one product the direction needs.
    const { a, b } = this;
    const before = order.map((p) => [a[p] as number, b[p] as number] as const);
    active[q] = 1;
    order.push(q);
    await this.takeDots(g);
    for (let i = 0; i < before.length; i++) {
      const p = order[i] as number;
      const [ap, bp] = before[i] as readonly [number, number];
      this.sy[p * m + q] = (a[p] as number) - ap;
      const v = (b[p] as number) - bp;
      this.yy[p * m + q] = v;
      this.yy[q * m + p] = v;
    }
    return { sy, yy };
  }

  async direction(g: Float32Array, hDiag: number, d: Float32Array): Promise<void> {
    const { m, n, order, sy, yy, a, b, w, u, c } = this;
    const k = order.length;
    if (k === 0) {
      for (let i = 0; i < n; i++) d[i] = hDiag * -(g[i] as number);
      return;
    }
    if (this.lastG !== g) await this.takeDots(g);
    const gamma = hDiag;
    // R w = a, back substitution (R upper triangular in age order: R_ij = s_i . y_j, i <= j).
    for (let i = k - 1; i >= 0; i--) {
      const qi = order[i] as number;
      let acc = a[qi] as number;
      for (let j = i + 1; j < k; j++) acc -= (sy[qi * m + (order[j] as number)] as number) * (w[j] as number);
      w[i] = acc / (sy[qi * m + qi] as number);
    }
    // R' u = D w + gamma (Y'Y w - b), forward substitution.
    for (let i = 0; i < k; i++) {
      const qi = order[i] as number;
      let yyw = 0;
      for (let j = 0; j < k; j++) yyw += (yy[qi * m + (order[j] as number)] as number) * (w[j] as number);
      const rii = sy[qi * m + qi] as number;
      let acc = rii * (w[i] as number) + gamma * (yyw - (b[qi] as number));
      for (let j = 0; j < i; j++) acc -= (sy[(order[j] as number) * m + qi] as number) * (u[j] as number);
      u[i] = acc / rii;
    }
    c.fill(0);
    for (let i = 0; i < k; i++) {
      const qi = order[i] as number;
      c[2 * qi] = -(u[i] as number);
      c[2 * qi + 1] = gamma * (w[i] as number);
    }
    const rows = 2 * this.used;
    await this.products.combine(this.h, rows, c.subarray(0, rows), gamma, g, d);
  }

  /** a, b = S'g, Y'g for the pairs held. */
  private async takeDots(g: Float32Array): Promise<void> {
    const ab = await this.products.dots(this.h, 2 * this.used, g);
    for (const q of this.order) {
      this.a[q] = ab[2 * q] as number;
      this.b[q] = ab[2 * q + 1] as number;
    }
    this.lastG = g;
  }

  clear(): void {
    this.order.length = 0;
    this.active.fill(0);
    this.used = 0;
    this.lastG = undefined;
  }

  async dispose(): Promise<void> {
    await this.products.dispose();
  }
}
