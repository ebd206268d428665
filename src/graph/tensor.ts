/** The values of a graph and their shapes: what the graph, its shape inference and its rules share. */

/** A dimension: a number when known at build time, a name (ONNX dim_param) when it is not. */
export type Dim = number | string;
/** Element types: float32 for values, int64 for shapes, bool for masks, the 8-bit types and int32 for the int8 path. */
export type DType = "float32" | "int64" | "bool" | "uint8" | "int8" | "int32";

export type InitializerData = Float32Array | BigInt64Array | Uint8Array | Int8Array | Int32Array;

/** A value in the graph: a graph input, an initializer or a node output. */
export interface Tensor {
  readonly name: string;
  readonly shape: readonly Dim[];
  readonly dtype: DType;
}

/** Attribute values. Plain numbers are ONNX ints; floats must be wrapped so the encoding is explicit. */
export type AttrValue = number | readonly number[] | string | { readonly float: number };

export interface Node {
  readonly op: string;
  readonly domain?: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

export interface Initializer {
  readonly tensor: Tensor;
  readonly data: InitializerData;
}

/** What shape inference reads of a graph: the values of its int64 constants (Reshape's shape, Slice's starts...). */
export interface ConstantInts {
  readonly intConstants: ReadonlyMap<string, readonly number[]>;
}

/** Number of elements, or undefined when a dimension is symbolic. */
export function sizeOf(shape: readonly Dim[]): number | undefined {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number") return undefined;
    n *= d;
  }
  return n;
}

/** The shape as numbers; throws when a dimension is symbolic (gradient rules need static shapes). */
export function staticShape(t: Tensor): number[] {
  return t.shape.map((d) => {
    if (typeof d !== "number")
      throw new Error(`${t.name} has a symbolic dimension ${d}; a static shape is needed`);
    return d;
  });
}

/** An int-list attribute, or `fallback` when the node does not set it. */
export function intsAttr(
  attrs: Readonly<Record<string, AttrValue>>,
  key: string,
  fallback: readonly number[],
): number[] {
  const v = attrs[key];
  if (v === undefined) return [...fallback];
  if (!Array.isArray(v)) throw new Error(`attribute ${key} must be a list of ints`);
  return [...(v as readonly number[])];
}
