import type { Graph, Node, Tensor } from "../graph/graph.js";
import { intsAttr, staticShape } from "../graph/graph.js";

/**
 * A reverse-mode rule: given the node and the gradients of the loss with respect
 * to its outputs (undefined where an output does not reach the loss), returns
 * the gradients with respect to the inputs flagged in `needs`.
 *
 * Every rule here is checked against central finite differences in
 * test/gradients.test.ts.
 */
export type GradRule = (
  g: Graph,
  node: NodeView,
  dOut: readonly (Tensor | undefined)[],
  needs: readonly boolean[],
) => (Tensor | undefined)[];

export interface NodeView {
  readonly node: Node;
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
}

function first(d: readonly (Tensor | undefined)[], op: string): Tensor {
  const t = d[0];
  if (!t) throw new Error(`${op}: no gradient for its output`);
  return t;
}

function input(n: NodeView, i: number): Tensor {
  return n.inputs[i] as Tensor;
}

/** Sums a broadcast gradient back to the shape of the operand it was broadcast from. */
export function sumToShape(g: Graph, grad: Tensor, target: readonly number[]): Tensor {
  const shape = staticShape(grad);
  if (shape.length === target.length && shape.every((d, i) => d === target[i])) return grad;
  const lead = shape.length - target.length;
  const axes: number[] = [];
  shape.forEach((d, i) => {
    if (i < lead || (target[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  let out = grad;
  if (axes.length > 0) out = g.op1("ReduceSum", [grad, g.ints(axes)], { keepdims: 1 });
  return g.op1("Reshape", [out, g.ints(target)]);
}

/** A pooling's window [kh, kw], which the pooling rules need to equal its stride, without padding. */
function nonOverlapping(n: NodeView, op: string): [number, number] {
  const attrs = n.node.attrs;
  const [kh, kw] = intsAttr(attrs, "kernel_shape", []) as [number, number];
  const strides = intsAttr(attrs, "strides", [1, 1]);
  const pads = intsAttr(attrs, "pads", [0, 0, 0, 0]);
  if (strides[0] !== kh || strides[1] !== kw || pads.some((p) => p !== 0)) {
    throw new Error(`${op} gradient supports kernel = stride without padding only`);
  }
  return [kh, kw];
}

/** Each value of a pooled N x C x oh x ow tensor repeated over its kh x kw window. */
function spreadWindows(g: Graph, t: Tensor, [kh, kw]: [number, number]): Tensor {
  const [nb, c, oh, ow] = staticShape(t) as [number, number, number, number];
  const six = g.op1("Reshape", [t, g.ints([nb, c, oh, 1, ow, 1])]);
  const spread = g.op1("Expand", [six, g.ints([nb, c, oh, kh, ow, kw])]);
  return g.op1("Reshape", [spread, g.ints([nb, c, oh * kh, ow * kw])]);
}

/** Zeros for the last rows and columns that a pooling dropped (odd sizes). */
function padToInput(g: Graph, t: Tensor, xs: readonly number[]): Tensor {
  const [, , h, w] = xs as [number, number, number, number];
  const [, , th, tw] = staticShape(t) as [number, number, number, number];
  if (th === h && tw === w) return t;
  return g.op1("Pad", [t, g.ints([0, 0, 0, 0, 0, 0, h - th, w - tw])], { mode: "constant" });
}

function unary(f: (g: Graph, n: NodeView, dy: Tensor) => Tensor): GradRule {
  return (g, n, d, needs) => [needs[0] ? f(g, n, first(d, n.node.op)) : undefined];
}

function reduceRule(mean: boolean): GradRule {
  return (g, n, d, needs) => {
    if (!needs[0]) return [undefined];
    const x = input(n, 0);
    const xs = staticShape(x);
    const rank = xs.length;
    let axes: number[];
    if (mean) axes = intsAttr(n.node.attrs, "axes", []);
    else
      axes = n.inputs[1] && n.inputs[1].name !== "" ? [...(g.intConstants.get(n.inputs[1].name) ?? [])] : [];
    if (axes.length === 0) axes = xs.map((_, i) => i);
    axes = axes.map((a) => (a < 0 ? a + rank : a));
    const keptShape = xs.map((s, i) => (axes.includes(i) ? 1 : s));
    let dy = first(d, n.node.op);
    if (mean) {
      const count = axes.reduce((p, a) => p * (xs[a] as number), 1);
      dy = g.op1("Mul", [dy, g.scalar(1 / count)]);
    }
    const kept = g.op1("Reshape", [dy, g.ints(keptShape)]);
    return [g.op1("Expand", [kept, g.ints(xs)])];
  };
}

/** If `b` is Transpose(a) of a 2-D `a`, the name of `a`. */
function gramOperand(g: Graph, b: Tensor): string | undefined {
  const producer = g.nodes.find((n) => n.outputs[0] === b.name);
  if (producer?.op !== "Transpose" || b.shape.length !== 2) return undefined;
  const perm = producer.attrs.perm as readonly number[] | undefined;
  return perm === undefined || (perm[0] === 1 && perm[1] === 0) ? producer.inputs[0] : undefined;
}

/**
 * Flipped kernels by the kernel they come from: every objective built on the same weights (each scale,
 * each job of a server) shares one copy instead of allocating the weights' size again.
 */
const flippedCache = new WeakMap<Float32Array, Float32Array>();

function flipped(data: Float32Array, m: number, c: number, kh: number, kw: number): Float32Array {
  const cached = flippedCache.get(data);
  if (cached) return cached;
  const out = new Float32Array(data.length);
  for (let o = 0; o < m; o++)
    for (let i = 0; i < c; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++)
          out[((i * m + o) * kh + (kh - 1 - y)) * kw + (kw - 1 - x)] = data[
            ((o * c + i) * kh + y) * kw + x
          ] as number;
  flippedCache.set(data, out);
  return out;
}

/**
 * A kernel flipped in space with its in/out channels swapped: the kernel of a convolution's input
 * gradient. A constant kernel is flipped here, once, so that the backward convolution has a constant
 * kernel of its own (which the int8 path quantises per output channel); any other is flipped in the graph.
 */
function flippedKernel(g: Graph, w: Tensor): Tensor {
  const [m, c, kh, kw] = staticShape(w) as [number, number, number, number];
  const data = g.initializers.get(w.name)?.data;
  if (data instanceof Float32Array) {
    const name = `${w.name}_flipped`;
    return g.constant(flipped(data, m, c, kh, kw), [c, m, kh, kw], g.values.has(name) ? undefined : name);
  }
  const swapped = g.op1("Transpose", [w], { perm: [1, 0, 2, 3] });
  return g.op1("Slice", [
    swapped,
    g.ints([-1, -1]),
    g.ints([-(kh + 1), -(kw + 1)]),
    g.ints([2, 3]),
    g.ints([-1, -1]),
  ]);
}

/** The gradient rule of each op type, keyed by ONNX op name. */
export const gradRules: Record<string, GradRule> = {
  Identity: unary((_g, _n, dy) => dy),

  Neg: unary((g, _n, dy) => g.op1("Neg", [dy])),

  // Reads the ReLU's output, not its input, so the input stays free for onnxruntime to fuse Conv+Relu.
  Relu: unary((g, n, dy) => {
    const y = n.outputs[0] as Tensor;
    const positive = g.op1("Greater", [y, g.scalar(0)]);
    return g.op1("Where", [positive, dy, g.scalar(0)]);
  }),

  Add: (g, n, d, needs) => {
    const dy = first(d, "Add");
    return [0, 1].map((i) => (needs[i] ? sumToShape(g, dy, staticShape(input(n, i))) : undefined));
  },

  Sub: (g, n, d, needs) => {
    const dy = first(d, "Sub");
    return [
      needs[0] ? sumToShape(g, dy, staticShape(input(n, 0))) : undefined,
      needs[1] ? sumToShape(g, g.op1("Neg", [dy]), staticShape(input(n, 1))) : undefined,
    ];
  },

  Mul: (g, n, d, needs) => {
    const dy = first(d, "Mul");
    const a = input(n, 0);
    const b = input(n, 1);
    return [
      needs[0] ? sumToShape(g, g.op1("Mul", [dy, b]), staticShape(a)) : undefined,
      needs[1] ? sumToShape(g, g.op1("Mul", [dy, a]), staticShape(b)) : undefined,
    ];
  },

  MatMul: (g, n, d, needs) => {
    const dy = first(d, "MatMul");
    const a = input(n, 0);
    const b = input(n, 1);
    // A Gram matrix Y = A A^T: dA = (dY + dY^T) A, one product where the general rule needs two
    // and two transposes of the large operand. This is most of the style loss's backward cost.
    const transposed = gramOperand(g, b);
    if (transposed === a.name && a.shape.length === 2 && needs[0]) {
      const sym = g.op1("Add", [dy, g.op1("Transpose", [dy], { perm: [1, 0] })]);
      return [g.op1("MatMul", [sym, a]), undefined];
    }
    const swapLast = (t: Tensor) => {
      const r = t.shape.length;
      const perm = t.shape.map((_, i) => i);
      perm[r - 2] = r - 1;
      perm[r - 1] = r - 2;
      return g.op1("Transpose", [t], { perm });
    };
    return [
      needs[0] ? sumToShape(g, g.op1("MatMul", [dy, swapLast(b)]), staticShape(a)) : undefined,
      needs[1] ? sumToShape(g, g.op1("MatMul", [swapLast(a), dy]), staticShape(b)) : undefined,
    ];
  },

  Transpose: unary((g, n, dy) => {
    const rank = input(n, 0).shape.length;
    const perm = intsAttr(
      n.node.attrs,
      "perm",
      Array.from({ length: rank }, (_, i) => rank - 1 - i),
    );
    const inverse: number[] = new Array(rank);
    perm.forEach((p, i) => {
      inverse[p] = i;
    });
    return g.op1("Transpose", [dy], { perm: inverse });
  }),

  Reshape: unary((g, n, dy) => g.op1("Reshape", [dy, g.ints(staticShape(input(n, 0)))])),

  Expand: unary((g, n, dy) => sumToShape(g, dy, staticShape(input(n, 0)))),

  ReduceSum: reduceRule(false),
  ReduceMean: reduceRule(true),

  // The gradient of a slice is the output gradient padded back into place (unit steps only).
  Slice: unary((g, n, dy) => {
    const xs = staticShape(input(n, 0));
    const rank = xs.length;
    const get = (i: number) => (n.inputs[i] ? g.intConstants.get((n.inputs[i] as Tensor).name) : undefined);
    const starts = get(1) ?? [];
    const ends = get(2) ?? [];
    const axes = get(3) ?? starts.map((_, i) => i);
    const steps = get(4) ?? starts.map(() => 1);
    const pads = new Array<number>(2 * rank).fill(0);
    axes.forEach((a0, i) => {
      if (steps[i] !== 1) throw new Error("Slice gradient supports unit steps only");
      const a = a0 < 0 ? a0 + rank : a0;
      const dim = xs[a] as number;
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
      const s = clamp(starts[i] as number);
      const e = clamp(ends[i] as number);
      pads[a] = s;
      pads[a + rank] = dim - e;
    });
    return g.op1("Pad", [dy, g.ints(pads)], { mode: "constant" });
  }),

  Pad: unary((g, n, dy) => {
    const xs = staticShape(input(n, 0));
    const pads = g.intConstants.get(input(n, 1).name);
    if (!pads || pads.some((p) => p < 0)) throw new Error("Pad gradient needs constant non-negative pads");
    const axes = xs.map((_, i) => i);
    return g.op1("Slice", [
      dy,
      g.ints(axes.map((i) => pads[i] as number)),
      g.ints(axes.map((i) => (pads[i] as number) + (xs[i] as number))),
      g.ints(axes),
    ]);
  }),

  // d/dX of a stride-1 convolution is the convolution of dY with the kernel flipped in space and
  // with its in/out channels swapped: measured twice as fast as ConvTranspose in onnxruntime.
  Conv: (g, n, d, needs) => {
    if (needs[1] || needs[2])
      throw new Error("Conv gradient is implemented for the input only (frozen weights)");
    if (!needs[0]) return [undefined, undefined, undefined];
    const dy = first(d, "Conv");
    const w = input(n, 1);
    const [, , kh, kw] = staticShape(w) as [number, number, number, number];
    const attrs = n.node.attrs;
    const strides = intsAttr(attrs, "strides", [1, 1]);
    const dilations = intsAttr(attrs, "dilations", [1, 1]);
    const group = (attrs.group as number | undefined) ?? 1;
    if (strides.some((s) => s !== 1) || dilations.some((s) => s !== 1) || group !== 1) {
      throw new Error("Conv gradient supports stride 1, dilation 1 and group 1 only");
    }
    const [pt, pl, pb, pr] = intsAttr(attrs, "pads", [0, 0, 0, 0]) as [number, number, number, number];
    const dx = g.op1("Conv", [dy, flippedKernel(g, w)], {
      kernel_shape: [kh, kw],
      pads: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr],
    });
    return [dx, undefined, undefined];
  },

  // Routes each output gradient to the arg-max of its window, as PyTorch does (first maximum wins).
  // With the Indices output (the CPU graph), the gradient is routed by MaxUnpool. Without it (WebGPU
  // has no Indices), each window's gradient goes where the input equals the window's maximum: a tie
  // sends it to every tied pixel, and ties at 0 are masked by the ReLU's backward that precedes it.
  MaxPool: (g, n, d, needs) => {
    if (!needs[0]) return [undefined];
    const dy = first(d, "MaxPool");
    const indices = n.outputs[1];
    const xs = staticShape(input(n, 0));
    const attrs = n.node.attrs;
    if (indices) {
      return [
        g.op1("MaxUnpool", [dy, indices, g.ints(xs)], {
          kernel_shape: intsAttr(attrs, "kernel_shape", []),
          strides: intsAttr(attrs, "strides", [1, 1]),
          pads: intsAttr(attrs, "pads", [0, 0, 0, 0]),
        }),
      ];
    }
    const window = nonOverlapping(n, "MaxPool");
    const [, , h, w] = xs as [number, number, number, number];
    const [, , oh, ow] = staticShape(dy) as [number, number, number, number];
    let x = input(n, 0);
    if (oh * window[0] !== h || ow * window[1] !== w) {
      x = g.op1("Slice", [x, g.ints([0, 0]), g.ints([oh * window[0], ow * window[1]]), g.ints([2, 3])]);
    }
    const isMax = g.op1("Equal", [x, spreadWindows(g, n.outputs[0] as Tensor, window)]);
    const routed = g.op1("Where", [isMax, spreadWindows(g, dy, window), g.scalar(0)]);
    return [padToInput(g, routed, xs)];
  },

  // Non-overlapping average pooling only (kernel = stride, no padding): each input pixel of a window
  // gets the window's gradient divided by the window size; rows and columns the pooling dropped get 0.
  AveragePool: unary((g, n, dy) => {
    const window = nonOverlapping(n, "AveragePool");
    const scaled = g.op1("Mul", [dy, g.scalar(1 / (window[0] * window[1]))]);
    return padToInput(g, spreadWindows(g, scaled, window), staticShape(input(n, 0)));
  }),
};
