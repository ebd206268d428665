import onnxProto from "onnx-proto";
import type { AttrValue, DType, Graph, Tensor } from "./graph.js";

const { onnx } = onnxProto;

/** The opset the graph builder's ops follow (ReduceMean takes axes as an attribute until 18). */
export const OPSET = 17;

const DATA_TYPE: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  int32: onnx.TensorProto.DataType.INT32,
};

function valueInfo(t: Tensor): onnxProto.onnx.IValueInfoProto {
  return {
    name: t.name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[t.dtype],
        shape: { dim: t.shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === "number") return { name, type: T.INT, i: v };
  if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: [...(v as readonly number[])] };
  return { name, type: T.FLOAT, f: (v as { float: number }).float };
}

/** Serialises the graph as an ONNX ModelProto. */
export function toOnnx(g: Graph, graphName = "stylegram"): Uint8Array {
  const initializer = [...g.initializers.values()].map(({ tensor, data }) => ({
    name: tensor.name,
    dims: tensor.shape as number[],
    dataType: DATA_TYPE[tensor.dtype],
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  }));
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: "stylegram",
    opsetImport: [{ domain: "", version: OPSET }],
    graph: {
      name: graphName,
      node: g.nodes.map((n, i) => ({
        name: `n${i}_${n.op}`,
        opType: n.op,
        domain: n.domain ?? "",
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
      })),
      initializer,
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
