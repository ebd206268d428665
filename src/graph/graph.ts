import { inferShapes } from "./shapes.js";
import type { AttrValue, Dim, DType, Initializer, InitializerData, Node, Tensor } from "./tensor.js";

export type { AttrValue, Dim, DType, Initializer, InitializerData, Node, Tensor } from "./tensor.js";
export { intsAttr, sizeOf, staticShape } from "./tensor.js";

/**
 * An ONNX graph under construction, with every value's shape known (or symbolic)
 * as it is added, so that gradient rules can be written against static shapes.
 *
 * Nodes are kept in the order they were added, which is a topological order:
 * the gradient pass relies on that.
 */
export class Graph {
  readonly values = new Map<string, Tensor>();
  readonly nodes: Node[] = [];
  readonly initializers = new Map<string, Initializer>();
  readonly inputs: Tensor[] = [];
  readonly outputs: Tensor[] = [];
  /** Values of int64 constants, read by shape inference (Reshape's shape, Slice's starts...). */
  readonly intConstants = new Map<string, readonly number[]>();
  private readonly producers = new Map<string, Node>();
  private counter = 0;
  private readonly constantCache = new Map<string, Tensor>();

  /** Fresh names from here on cannot clash with any name `src` has made (for a graph rewritten from it). */
  continueNamingFrom(src: Graph): void {
    this.counter = Math.max(this.counter, src.counter);
  }

  /** A fresh name with a readable prefix. */
  fresh(prefix: string): string {
    let name: string;
    do {
      name = `${prefix}_${this.counter++}`;
    } while (this.values.has(name));
    return name;
  }

  get(name: string): Tensor {
    const t = this.values.get(name);
    if (!t) throw new Error(`graph has no value named ${name}`);
    return t;
  }

  input(name: string, shape: readonly Dim[], dtype: DType = "float32"): Tensor {
    const t = this.declare({ name, shape: [...shape], dtype });
    this.inputs.push(t);
    return t;
  }

  output(t: Tensor, name?: string): Tensor {
    let out = t;
    if (name !== undefined && name !== t.name) {
      out = this.op("Identity", [t], {}, { names: [name] })[0] as Tensor;
    }
    this.outputs.push(out);
    return out;
  }

  /** A float32 initializer. Identical small constants are shared. */
  constant(data: Float32Array | readonly number[], shape: readonly number[], name?: string): Tensor {
    const array = data instanceof Float32Array ? data : Float32Array.from(data);
    const size = shape.reduce((a, b) => a * b, 1);
    if (array.length !== size) {
      throw new Error(`constant ${name ?? ""}: ${array.length} values for shape [${shape.join(",")}]`);
    }
    const key =
      name === undefined && array.length <= 16 ? `f:${shape.join(",")}:${array.join(",")}` : undefined;
    const cached = key === undefined ? undefined : this.constantCache.get(key);
    if (cached) return cached;
    const t = this.declare({ name: name ?? this.fresh("const"), shape: [...shape], dtype: "float32" });
    this.initializers.set(t.name, { tensor: t, data: array });
    if (key !== undefined) this.constantCache.set(key, t);
    return t;
  }

  /** An initializer of any element type (the int8 path's quantised weights and zero points). */
  typed(dtype: DType, data: InitializerData, shape: readonly number[], name?: string): Tensor {
    const t = this.declare({ name: name ?? this.fresh("const"), shape: [...shape], dtype });
    this.initializers.set(t.name, { tensor: t, data });
    return t;
  }

  /** The node that computes a value, or undefined for inputs and initializers. */
  producer(name: string): Node | undefined {
    return this.producers.get(name);
  }

  scalar(value: number): Tensor {
    return this.constant([value], []);
  }

  /** A 1-D int64 initializer, used for shapes, axes and slice bounds. */
  ints(values: readonly number[]): Tensor {
    const key = `i:${values.join(",")}`;
    const cached = this.constantCache.get(key);
    if (cached) return cached;
    const t = this.declare({ name: this.fresh("ints"), shape: [values.length], dtype: "int64" });
    this.initializers.set(t.name, { tensor: t, data: BigInt64Array.from(values.map((v) => BigInt(v))) });
    this.intConstants.set(t.name, [...values]);
    this.constantCache.set(key, t);
    return t;
  }

  isConstant(t: Tensor): boolean {
    return this.initializers.has(t.name);
  }

  /**
   * Adds a node and returns its outputs, with shapes inferred from the inputs.
   * `nOutputs` asks for optional outputs (MaxPool's Indices).
   */
  op(
    op: string,
    inputs: readonly (Tensor | undefined)[],
    attrs: Record<string, AttrValue> = {},
    options: { nOutputs?: number; names?: readonly string[]; domain?: string } = {},
  ): Tensor[] {
    const ins = inputs.map((t) => t ?? { name: "", shape: [], dtype: "float32" as const });
    const specs = inferShapes(this, op, ins, attrs);
    const n = options.nOutputs ?? 1;
    if (specs.length < n) throw new Error(`${op} has ${specs.length} outputs, ${n} asked`);
    const outs = specs.slice(0, n).map((spec, i) =>
      this.declare({
        name: options.names?.[i] ?? this.fresh(op.toLowerCase()),
        shape: spec.shape,
        dtype: spec.dtype,
      }),
    );
    const node: Node = {
      op,
      ...(options.domain === undefined ? {} : { domain: options.domain }),
      inputs: ins.map((t) => t.name),
      outputs: outs.map((t) => t.name),
      attrs,
    };
    this.nodes.push(node);
    for (const o of node.outputs) this.producers.set(o, node);
    return outs;
  }

  /** Single-output shorthand for `op`. */
  op1(op: string, inputs: readonly (Tensor | undefined)[], attrs: Record<string, AttrValue> = {}): Tensor {
    return this.op(op, inputs, attrs)[0] as Tensor;
  }

  private declare(t: Tensor): Tensor {
    if (this.values.has(t.name)) throw new Error(`graph already has a value named ${t.name}`);
    this.values.set(t.name, t);
    return t;
  }
}
