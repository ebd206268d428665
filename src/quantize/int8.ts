import { type AttrValue, Graph, type Node, staticShape, type Tensor } from "../graph/graph.js";

/**
 * The int8 way of building the objective graph: a rewrite of the differentiated float32 graph in
 * which every 3x3 convolution with at least 16 channels in and out (all but the first layer's,
 * forward and backward) becomes a QLinearConv, the only int8 convolution onnxruntime's CPU kernels
 * run fast (u8 activations x s8 weights: measured 3.8x float32 Conv on an AMD EPYC with VNNI; s8 x s8
 * activations ran at a third of float32, so signed gradients are stored as u8 with zero point 128).
 *
 * - Weights: s8, symmetric, one scale per output channel, quantised once here.
 * - Activations (ReLU outputs, >= 0): u8 with zero point 0. A forward QLinearConv writes u8 straight
 *   away, its clamp at 0 being the ReLU, and the next one reads it: no float copy between layers
 *   except where a loss reads the features (dequantised there), and max pooling runs on the u8 codes.
 * - Gradients: u8 with zero point 128 (127 levels each side). The ReLU mask is applied to the codes
 *   when the gradient comes straight from the previous backward convolution.
 * - Losses, Gram matrices, the gradient's sums and the first layer stay in float32.
 *
 * Each quantised tensor's scale is a graph input (`qscale__<key>`), chosen from the maxima of earlier
 * evaluations (delayed scaling, see scales.ts); the graph returns this evaluation's maxima
 * (`amax__<key>` and for gradients `amin__<key>`, or the extreme codes `codemax__`/`codemin__` of a QLinearConv's output, from which
 * a saturated output is seen), so scaling costs no extra pass.
 */

export type QuantKind = "activation" | "gradient";

/** A tensor of the float graph that the int8 graph stores in 8 bits, with its own scale. */
export interface QuantPoint {
  /** The float graph's name of the tensor. */
  key: string;
  kind: QuantKind;
  /** How the int8 graph reports this evaluation's maximum: in real units, or as extreme u8 codes. */
  observed: "amax" | "codes";
}

/** Levels on each side of zero: activations use the whole u8 range, gradients half of it. */
export const LEVELS: Record<QuantKind, number> = { activation: 255, gradient: 127 };

export const scaleInput = (key: string) => `qscale__${key}`;
export const amaxOutput = (key: string) => `amax__${key}`;
export const aminOutput = (key: string) => `amin__${key}`;
export const codeMaxOutput = (key: string) => `codemax__${key}`;
export const codeMinOutput = (key: string) => `codemin__${key}`;

export interface QuantizedGraph {
  graph: Graph;
  points: QuantPoint[];
}

/** Per-output-channel symmetric s8 quantisation of a float kernel [M, C, kh, kw]. */
export function quantizeKernel(
  data: Float32Array,
  outChannels: number,
): { q: Int8Array; scales: Float32Array } {
  const per = data.length / outChannels;
  const q = new Int8Array(data.length);
  const scales = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    let m = 0;
    for (let i = o * per; i < (o + 1) * per; i++) m = Math.max(m, Math.abs(data[i] as number));
    const s = m > 0 ? m / 127 : 1;
    scales[o] = s;
    for (let i = o * per; i < (o + 1) * per; i++) q[i] = Math.round((data[i] as number) / s);
  }
  return { q, scales };
}

/** Quantised kernels by their float kernel: objectives on the same weights share them. */
const kernelCache = new WeakMap<Float32Array, { q: Int8Array; scales: Float32Array }>();

function quantizedKernel(data: Float32Array, outChannels: number): { q: Int8Array; scales: Float32Array } {
  let k = kernelCache.get(data);
  if (!k) {
    k = quantizeKernel(data, outChannels);
    kernelCache.set(data, k);
  }
  return k;
}

/** A copy of `src`'s inputs and initializers in a new graph, ready for its nodes to be replayed. */
function emptyCopy(src: Graph): Graph {
  const g = new Graph();
  g.continueNamingFrom(src);
  for (const t of src.inputs) g.input(t.name, t.shape, t.dtype);
  for (const { tensor, data } of src.initializers.values()) {
    g.typed(tensor.dtype, data, staticShape(tensor), tensor.name);
    const ints = src.intConstants.get(tensor.name);
    if (ints) g.intConstants.set(tensor.name, ints);
  }
  return g;
}

function replay(g: Graph, n: Node): Tensor[] {
  return g.op(
    n.op,
    n.inputs.map((i) => (i === "" ? undefined : g.get(i))),
    n.attrs as Record<string, AttrValue>,
    {
      names: n.outputs,
      nOutputs: n.outputs.length,
      ...(n.domain === undefined ? {} : { domain: n.domain }),
    },
  );
}

function isZeroScalar(g: Graph, name: string): boolean {
  const d = g.initializers.get(name)?.data;
  return d instanceof Float32Array && d.length === 1 && d[0] === 0;
}

/**
 * A float tensor's range as graph outputs: its maximum, and for a signed gradient its minimum too.
 * Two reductions rather than the maximum of |t|, whose Abs would be a full-size copy of t (measured:
 * the calibration graph's peak memory went from 1.6 to 2.1 GB at 512 px with it).
 */
function observeFloat(g: Graph, t: Tensor, key: string, kind: QuantKind): void {
  g.output(g.op1("ReduceMax", [t], { keepdims: 0 }), amaxOutput(key));
  if (kind === "gradient") g.output(g.op1("ReduceMin", [t], { keepdims: 0 }), aminOutput(key));
}

/** The float graph with each point's range returned: the calibration run. */
export function withObservers(src: Graph, points: readonly QuantPoint[]): Graph {
  const g = emptyCopy(src);
  const byKey = new Map(points.map((p) => [p.key, p]));
  for (const n of src.nodes) {
    replay(g, n);
    // Right after the producer: an observer at the end of the graph would keep its tensor alive
    // to the end (measured: +600 MB at 512 px).
    for (const o of n.outputs) {
      const p = byKey.get(o);
      if (p) observeFloat(g, g.get(o), o, p.kind);
    }
  }
  for (const t of src.outputs) g.outputs.push(g.get(t.name));
  return g;
}

/** Whether a Conv node is one the int8 path quantises: a constant float kernel, 16+ channels in and out. */
function quantizable(src: Graph, n: Node): boolean {
  if (n.op !== "Conv") return false;
  const w = src.initializers.get(n.inputs[1] as string);
  if (!(w?.data instanceof Float32Array)) return false;
  const [m, c] = staticShape(w.tensor);
  return (m as number) >= 16 && (c as number) >= 16;
}

/**
 * Rewrites the differentiated float graph into its int8 form (see the module comment). `parts`
 * "backward" quantises only the input-gradient convolutions, for measuring that split.
 */
export function quantizeInt8(src: Graph, parts: "all" | "backward" = "all"): QuantizedGraph {
  const g = emptyCopy(src);
  const points: QuantPoint[] = [];
  const u8 = (v: number) => g.typed("uint8", Uint8Array.of(v), [], g.fresh(`u8_${v}`));
  const zeroAct = u8(0);
  const zeroGrad = u8(128);
  const consumers = new Map<string, Node[]>();
  for (const n of src.nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const fused = new Set<Node>();

  const newPoint = (key: string, kind: QuantKind, observed: QuantPoint["observed"]): Tensor => {
    points.push({ key, kind, observed });
    return g.input(scaleInput(key), []);
  };
  const observeCodes = (q: Tensor, key: string, kind: QuantKind) => {
    const cast = (t: Tensor) => g.op1("Cast", [t], { to: 1 });
    g.output(cast(g.op1("ReduceMax", [q], { keepdims: 0 })), codeMaxOutput(key));
    if (kind === "gradient") g.output(cast(g.op1("ReduceMin", [q], { keepdims: 0 })), codeMinOutput(key));
  };
  /** If t is DequantizeLinear(q, s, zero), its codes and scale. */
  const dequantized = (t: Tensor, zero: Tensor): { q: Tensor; s: Tensor } | undefined => {
    const p = g.producer(t.name);
    if (p?.op !== "DequantizeLinear" || p.inputs[2] !== zero.name) return undefined;
    return { q: g.get(p.inputs[0] as string), s: g.get(p.inputs[1] as string) };
  };
  /** The scale of the gradient grid t lies on exactly (masking and unpooling move values, they make none). */
  const gridOf = (t: Tensor): Tensor | undefined => {
    const d = dequantized(t, zeroGrad);
    if (d) return d.s;
    const p = g.producer(t.name);
    if (p?.op === "Where" && isZeroScalar(g, p.inputs[2] as string))
      return gridOf(g.get(p.inputs[1] as string));
    if (p?.op === "MaxUnpool") return gridOf(g.get(p.inputs[0] as string));
    return undefined;
  };
  /** The gradient's codes, when the mask can be applied to codes (no float round trip). */
  const gradientCodes = (t: Tensor): Tensor | undefined => {
    const d = dequantized(t, zeroGrad);
    if (d) return d.q;
    const p = g.producer(t.name);
    if (p?.op !== "Where" || !isZeroScalar(g, p.inputs[2] as string)) return undefined;
    const inner = gradientCodes(g.get(p.inputs[1] as string));
    return inner && g.op1("Where", [g.get(p.inputs[0] as string), inner, zeroGrad]);
  };

  const asActivation = (t: Tensor): { q: Tensor; s: Tensor } => {
    const d = dequantized(t, zeroAct);
    if (d) return d;
    const s = newPoint(t.name, "activation", "amax");
    observeFloat(g, t, t.name, "activation");
    return { q: g.op1("QuantizeLinear", [t, s, zeroAct]), s };
  };
  const asGradient = (t: Tensor): { q: Tensor; s: Tensor } => {
    const s = gridOf(t);
    if (s) return { q: gradientCodes(t) ?? g.op1("QuantizeLinear", [t, s, zeroGrad]), s };
    const fresh = newPoint(t.name, "gradient", "amax");
    observeFloat(g, t, t.name, "gradient");
    return { q: g.op1("QuantizeLinear", [t, fresh, zeroGrad]), s: fresh };
  };

  const qconv = (n: Node, x: { q: Tensor; s: Tensor }, out: string, kind: QuantKind): void => {
    const w = src.initializers.get(n.inputs[1] as string);
    const shape = staticShape(w?.tensor as Tensor);
    const m = shape[0] as number;
    const { q, scales } = quantizedKernel(w?.data as Float32Array, m);
    const wq = g.typed("int8", q, shape, `${w?.tensor.name}_s8`);
    const ws = g.constant(scales, [m], `${w?.tensor.name}_scales`);
    const wz = g.typed("int8", new Int8Array(m), [m], `${w?.tensor.name}_zeros`);
    const zero = kind === "activation" ? zeroAct : zeroGrad;
    const ys = newPoint(out, kind, "codes");
    const inputs = [x.q, x.s, zero, wq, ws, wz, ys, zero];
    const bias = n.inputs[2];
    if (bias) {
      // The int32 bias is in units of x_scale x w_scale, and x_scale is known only at run time.
      const units = g.op1("Mul", [ws, x.s]);
      inputs.push(g.op1("Cast", [g.op1("Round", [g.op1("Div", [g.get(bias), units])])], { to: 6 }));
    }
    const [codes] = g.op("QLinearConv", inputs, n.attrs as Record<string, AttrValue>, {
      names: [`${out}__q`],
    });
    observeCodes(codes as Tensor, out, kind);
    g.op("DequantizeLinear", [codes, ys, zero], {}, { names: [out] });
  };

  for (const n of src.nodes) {
    if (fused.has(n)) continue;
    const next = consumers.get(n.outputs[0] as string) ?? [];
    const forward = parts === "all" && n.inputs.length === 3 && next.length === 1 && next[0]?.op === "Relu";
    if (forward && quantizable(src, n)) {
      // Forward: Conv + Relu, the ReLU being the u8 output's clamp at 0.
      const relu = next[0] as Node;
      fused.add(relu);
      qconv(n, asActivation(g.get(n.inputs[0] as string)), relu.outputs[0] as string, "activation");
      continue;
    }
    if (quantizable(src, n) && n.inputs.length === 2) {
      // An input-gradient convolution (no bias).
      qconv(n, asGradient(g.get(n.inputs[0] as string)), n.outputs[0] as string, "gradient");
      continue;
    }
    if (n.op === "MaxPool") {
      const d = dequantized(g.get(n.inputs[0] as string), zeroAct);
      if (d) {
        // Pooling commutes with a monotone dequantisation: pool the codes (4x fewer bytes to read).
        const [pooled] = g.op("MaxPool", [d.q], n.attrs as Record<string, AttrValue>, {
          names: [`${n.outputs[0]}__q`, ...n.outputs.slice(1)],
          nOutputs: n.outputs.length,
        });
        g.op("DequantizeLinear", [pooled, d.s, zeroAct], {}, { names: [n.outputs[0] as string] });
        continue;
      }
    }
    if (n.op === "Greater" && isZeroScalar(src, n.inputs[1] as string)) {
      const d = dequantized(g.get(n.inputs[0] as string), zeroAct);
      if (d) {
        // The ReLU mask of the backward pass, read from the codes.
        g.op("Greater", [d.q, zeroAct], {}, { names: [n.outputs[0] as string] });
        continue;
      }
    }
    replay(g, n);
  }
  for (const t of src.outputs) g.outputs.push(g.get(t.name));
  return { graph: prune(g), points };
}

/** The graph without the nodes no output needs (float copies the rewrite made redundant). */
function prune(g: Graph): Graph {
  const needed = new Set(g.outputs.map((t) => t.name));
  const keep: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i] as Node;
    if (!n.outputs.some((o) => needed.has(o))) continue;
    keep.push(n);
    for (const x of n.inputs) if (x !== "") needed.add(x);
  }
  g.nodes.splice(0, g.nodes.length, ...keep.reverse());
  for (const name of [...g.initializers.keys()]) if (!needed.has(name)) g.initializers.delete(name);
  return g;
}
