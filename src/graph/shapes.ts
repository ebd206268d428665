import { type AttrValue, type ConstantInts, type Dim, type DType, intsAttr, type Tensor } from "./tensor.js";

export interface ValueSpec {
  shape: Dim[];
  dtype: DType;
}

type Rule = (
  g: ConstantInts,
  inputs: readonly Tensor[],
  attrs: Readonly<Record<string, AttrValue>>,
) => ValueSpec[];

let symbolCounter = 0;
/** A dimension that cannot be known at build time gets a fresh symbolic name. */
function unknown(): string {
  return `d${symbolCounter++}`;
}

function int(attrs: Readonly<Record<string, AttrValue>>, key: string, fallback: number): number {
  const v = attrs[key];
  if (v === undefined) return fallback;
  if (typeof v !== "number") throw new Error(`attribute ${key} must be an int`);
  return v;
}

function constInts(g: ConstantInts, t: Tensor | undefined, what: string): readonly number[] {
  const v = t === undefined ? undefined : g.intConstants.get(t.name);
  if (v === undefined) throw new Error(`${what} must be an int64 constant made by Graph.ints`);
  return v;
}

function arg(inputs: readonly Tensor[], i: number, op: string): Tensor {
  const t = inputs[i];
  if (!t || t.name === "") throw new Error(`${op} needs input ${i}`);
  return t;
}

/** Numpy-style broadcasting of any number of shapes. */
export function broadcastShapes(shapes: readonly (readonly Dim[])[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      if (d === 1) continue;
      if (dim === 1) dim = d;
      else if (dim !== d) {
        if (typeof dim === "number" && typeof d === "number") {
          throw new Error(`cannot broadcast shapes ${shapes.map((x) => `[${x.join(",")}]`).join(" and ")}`);
        }
        dim = typeof dim === "string" ? dim : d;
      }
    }
    out.push(dim);
  }
  return out;
}

function poolDim(size: Dim, k: number, s: number, padBegin: number, padEnd: number, dilation = 1): Dim {
  if (typeof size !== "number") return unknown();
  return Math.floor((size + padBegin + padEnd - dilation * (k - 1) - 1) / s) + 1;
}

function elementwise(dtype?: DType): Rule {
  return (_g, inputs) => {
    const real = inputs.filter((t) => t.name !== "");
    return [{ shape: broadcastShapes(real.map((t) => t.shape)), dtype: dtype ?? (real[0]?.dtype as DType) }];
  };
}

function windowed(op: string, withIndices: boolean): Rule {
  return (_g, inputs, attrs) => {
    const x = arg(inputs, 0, op);
    const k = intsAttr(attrs, "kernel_shape", []);
    if (k.length !== 2) throw new Error(`${op}: kernel_shape must have 2 entries`);
    const strides = intsAttr(attrs, "strides", [1, 1]);
    const pads = intsAttr(attrs, "pads", [0, 0, 0, 0]);
    const [n, c, h, w] = x.shape;
    const shape: Dim[] = [
      n as Dim,
      c as Dim,
      poolDim(h as Dim, k[0] as number, strides[0] as number, pads[0] as number, pads[2] as number),
      poolDim(w as Dim, k[1] as number, strides[1] as number, pads[1] as number, pads[3] as number),
    ];
    const out: ValueSpec[] = [{ shape, dtype: x.dtype }];
    if (withIndices) out.push({ shape: [...shape], dtype: "int64" });
    return out;
  };
}

function reduce(op: string, axesFromInput: boolean): Rule {
  return (g, inputs, attrs) => {
    const x = arg(inputs, 0, op);
    const keep = int(attrs, "keepdims", 1) === 1;
    const given = axesFromInput
      ? inputs[1] && inputs[1].name !== ""
        ? constInts(g, inputs[1], `${op} axes`)
        : []
      : intsAttr(attrs, "axes", []);
    const axes =
      given.length === 0 ? x.shape.map((_, i) => i) : given.map((a) => (a < 0 ? a + x.shape.length : a));
    const shape: Dim[] = [];
    x.shape.forEach((d, i) => {
      if (!axes.includes(i)) shape.push(d);
      else if (keep) shape.push(1);
    });
    return [{ shape, dtype: x.dtype }];
  };
}

function convShape(
  _g: ConstantInts,
  inputs: readonly Tensor[],
  attrs: Readonly<Record<string, AttrValue>>,
  op: string,
  weightInput: number,
  dtype: DType,
): ValueSpec[] {
  const x = arg(inputs, 0, op);
  const w = arg(inputs, weightInput, op);
  const strides = intsAttr(attrs, "strides", [1, 1]);
  const pads = intsAttr(attrs, "pads", [0, 0, 0, 0]);
  const dil = intsAttr(attrs, "dilations", [1, 1]);
  const [n, , h, wd] = x.shape;
  const [m, , kh, kw] = w.shape;
  if (typeof kh !== "number" || typeof kw !== "number")
    throw new Error(`${op} kernel must have a static shape`);
  return [
    {
      shape: [
        n as Dim,
        m as Dim,
        poolDim(h as Dim, kh, strides[0] as number, pads[0] as number, pads[2] as number, dil[0]),
        poolDim(wd as Dim, kw, strides[1] as number, pads[1] as number, pads[3] as number, dil[1]),
      ],
      dtype,
    },
  ];
}

const rules: Record<string, Rule> = {
  Identity: (_g, inputs) => {
    const x = arg(inputs, 0, "Identity");
    return [{ shape: [...x.shape], dtype: x.dtype }];
  },
  Relu: elementwise(),
  Abs: elementwise(),
  Round: elementwise(),
  Neg: elementwise(),
  Add: elementwise(),
  Sub: elementwise(),
  Mul: elementwise(),
  Div: elementwise(),
  Greater: elementwise("bool"),
  Equal: elementwise("bool"),
  Where: (_g, inputs) => [
    { shape: broadcastShapes(inputs.map((t) => t.shape)), dtype: arg(inputs, 1, "Where").dtype },
  ],
  Cast: (_g, inputs, attrs) => {
    const to = int(attrs, "to", 1);
    const types: Record<number, DType> = {
      1: "float32",
      2: "uint8",
      3: "int8",
      6: "int32",
      7: "int64",
      9: "bool",
    };
    const dtype = types[to];
    if (dtype === undefined) throw new Error(`Cast to ONNX type ${to} is not supported`);
    return [{ shape: [...arg(inputs, 0, "Cast").shape], dtype }];
  },
  Conv: (g, inputs, attrs) => convShape(g, inputs, attrs, "Conv", 1, "float32"),
  // QLinearConv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, bias):
  // the output has the zero point's type.
  QLinearConv: (g, inputs, attrs) =>
    convShape(g, inputs, attrs, "QLinearConv", 3, arg(inputs, 7, "QLinearConv").dtype),
  QuantizeLinear: (_g, inputs) => [
    { shape: [...arg(inputs, 0, "QuantizeLinear").shape], dtype: arg(inputs, 2, "QuantizeLinear").dtype },
  ],
  DequantizeLinear: (_g, inputs) => [
    { shape: [...arg(inputs, 0, "DequantizeLinear").shape], dtype: "float32" },
  ],
  MaxPool: windowed("MaxPool", true),
  AveragePool: windowed("AveragePool", false),
  MaxUnpool: (g, inputs) => {
    const shape = constInts(g, inputs[2], "MaxUnpool output_shape");
    return [{ shape: [...shape], dtype: "float32" }];
  },
  MatMul: (_g, inputs) => {
    const a = arg(inputs, 0, "MatMul");
    const b = arg(inputs, 1, "MatMul");
    if (a.shape.length < 2 || b.shape.length < 2) throw new Error("MatMul: 1-D operands are not supported");
    const batch = broadcastShapes([a.shape.slice(0, -2), b.shape.slice(0, -2)]);
    const k1 = a.shape[a.shape.length - 1];
    const k2 = b.shape[b.shape.length - 2];
    if (typeof k1 === "number" && typeof k2 === "number" && k1 !== k2) {
      throw new Error(`MatMul: inner dimensions ${k1} and ${k2} differ`);
    }
    return [
      {
        shape: [...batch, a.shape[a.shape.length - 2] as Dim, b.shape[b.shape.length - 1] as Dim],
        dtype: "float32",
      },
    ];
  },
  Transpose: (_g, inputs, attrs) => {
    const x = arg(inputs, 0, "Transpose");
    const perm = intsAttr(
      attrs,
      "perm",
      x.shape.map((_, i) => x.shape.length - 1 - i),
    );
    return [{ shape: perm.map((p) => x.shape[p] as Dim), dtype: x.dtype }];
  },
  Reshape: (g, inputs) => {
    const x = arg(inputs, 0, "Reshape");
    const target = constInts(g, inputs[1], "Reshape shape");
    const shape: Dim[] = target.map((d, i) => (d === 0 ? (x.shape[i] as Dim) : d));
    const minus = shape.indexOf(-1);
    if (minus >= 0) {
      const total = x.shape.every((d) => typeof d === "number")
        ? (x.shape as number[]).reduce((a, b) => a * b, 1)
        : undefined;
      const known = shape.every((d, i) => i === minus || typeof d === "number")
        ? (shape as number[]).reduce((a, b, i) => (i === minus ? a : a * b), 1)
        : undefined;
      shape[minus] = total !== undefined && known !== undefined ? total / known : unknown();
    }
    return [{ shape, dtype: x.dtype }];
  },
  ReduceSum: reduce("ReduceSum", true),
  ReduceMean: reduce("ReduceMean", false),
  ReduceMax: reduce("ReduceMax", false),
  ReduceMin: reduce("ReduceMin", false),
  Slice: (g, inputs) => {
    const x = arg(inputs, 0, "Slice");
    const starts = constInts(g, inputs[1], "Slice starts");
    const ends = constInts(g, inputs[2], "Slice ends");
    const axes = inputs[3] ? constInts(g, inputs[3], "Slice axes") : starts.map((_, i) => i);
    const steps = inputs[4] ? constInts(g, inputs[4], "Slice steps") : starts.map(() => 1);
    const shape = [...x.shape];
    axes.forEach((a0, i) => {
      const a = a0 < 0 ? a0 + x.shape.length : a0;
      const dim = x.shape[a];
      if (typeof dim !== "number") {
        shape[a] = unknown();
        return;
      }
      const step = steps[i] as number;
      const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
      let s = starts[i] as number;
      let e = ends[i] as number;
      s = s < 0 ? s + dim : s;
      e = e < 0 ? e + dim : e;
      if (step > 0) {
        s = clamp(s, 0, dim);
        e = clamp(e, 0, dim);
        shape[a] = Math.max(0, Math.ceil((e - s) / step));
      } else {
        s = clamp(s, 0, dim - 1);
        e = clamp(e, -1, dim - 1);
        shape[a] = Math.max(0, Math.ceil((e - s) / step));
      }
    });
    return [{ shape, dtype: x.dtype }];
  },
  Pad: (g, inputs) => {
    const x = arg(inputs, 0, "Pad");
    const pads = constInts(g, inputs[1], "Pad pads");
    const r = x.shape.length;
    const shape = x.shape.map((d, i) =>
      typeof d === "number" ? d + (pads[i] as number) + (pads[i + r] as number) : unknown(),
    );
    return [{ shape, dtype: x.dtype }];
  },
  Expand: (g, inputs) => {
    const x = arg(inputs, 0, "Expand");
    const target = constInts(g, inputs[1], "Expand shape");
    return [{ shape: broadcastShapes([x.shape, target]), dtype: x.dtype }];
  },
};

export function inferShapes(
  g: ConstantInts,
  op: string,
  inputs: readonly Tensor[],
  attrs: Readonly<Record<string, AttrValue>>,
): ValueSpec[] {
  const rule = rules[op];
  if (!rule) throw new Error(`no shape rule for op ${op}`);
  return rule(g, inputs, attrs);
}
