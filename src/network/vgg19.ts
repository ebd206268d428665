import type { Graph, Tensor } from "../graph/graph.js";
import { RELU_LAYERS, VGG19_ARCH } from "./layers.js";
import type { VggWeights } from "./weights.js";

export type Pooling = "max" | "avg";

export interface VggBuildOptions {
  pooling: Pooling;
  /** The network is cut after this ReLU. */
  upTo: string;
  /** The graph will be differentiated: MaxPool then emits its Indices output for the gradient to route through. */
  differentiable: boolean;
  /**
   * Whether MaxPool may emit Indices (default true). onnxruntime's WebGPU provider
   * has no Indices output; without it the gradient compares the input with the pooled maximum.
   */
  poolIndices?: boolean;
  /**
   * Applied to the input of every convolution after the first, with the number of poolings before
   * it: a tile of a larger picture zeroes there what lies outside the picture, so that the tile's
   * convolutions see the zero padding the whole picture's network sees (src/objective/tiling.ts).
   */
  maskInput?: (level: number, h: Tensor) => Tensor;
}

/**
 * Appends VGG19's feature layers to `g`, reading preprocessed input `x`
 * (RGB, 0..255 minus the ImageNet mean, NCHW). Returns every ReLU output up to
 * the cut, by name.
 */
export function buildVgg19(
  g: Graph,
  x: Tensor,
  weights: VggWeights,
  options: VggBuildOptions,
): Map<string, Tensor> {
  const stop = RELU_LAYERS.indexOf(options.upTo);
  if (stop < 0) throw new Error(`unknown layer ${options.upTo}`);
  const acts = new Map<string, Tensor>();
  let h = x;
  let level = 0;
  for (const layer of VGG19_ARCH) {
    if (acts.size > stop) break;
    if (layer === "pool") {
      level++;
      const attrs = { kernel_shape: [2, 2], strides: [2, 2] };
      h =
        options.pooling === "avg"
          ? g.op1("AveragePool", [h], attrs)
          : (g.op("MaxPool", [h], attrs, {
              nOutputs: options.differentiable && options.poolIndices !== false ? 2 : 1,
            })[0] as Tensor);
      continue;
    }
    const w = weights.get(layer);
    if (!w) throw new Error(`weights have no ${layer}`);
    if (options.maskInput && acts.size > 0) h = options.maskInput(level, h);
    const kernel = g.constant(w.kernel, w.kernelShape, `${layer}_W`);
    const bias = g.constant(w.bias, [w.bias.length], `${layer}_B`);
    const conv = g.op1("Conv", [h, kernel, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    h = g.op1("Relu", [conv]);
    acts.set(`relu${layer.slice(4)}`, h);
  }
  return acts;
}
