import { UsageError } from "../errors.js";

/** VGG19's feature layers in order; "pool" is a 2x2 stride-2 pooling. */
export const VGG19_ARCH = [
  "conv1_1",
  "conv1_2",
  "pool",
  "conv2_1",
  "conv2_2",
  "pool",
  "conv3_1",
  "conv3_2",
  "conv3_3",
  "conv3_4",
  "pool",
  "conv4_1",
  "conv4_2",
  "conv4_3",
  "conv4_4",
  "pool",
  "conv5_1",
  "conv5_2",
  "conv5_3",
  "conv5_4",
] as const;

export const CONV_LAYERS: readonly string[] = VGG19_ARCH.filter((l) => l !== "pool");
/** relu1_1 .. relu5_4, in network order; the 1-based index of a name here is its numeric alias. */
export const RELU_LAYERS: readonly string[] = CONV_LAYERS.map((c) => `relu${c.slice(4)}`);

/**
 * Canonical layer name for what a user typed: `relu4_2`, or its 1-based index
 * among the 16 conv+ReLU pairs (`10`), as the original PyTorch implementation allows.
 */
export function parseLayer(spec: string): string {
  const s = spec.trim();
  if (/^\d+$/.test(s)) {
    const i = Number(s);
    const name = RELU_LAYERS[i - 1];
    if (i >= 1 && name) return name;
    throw new UsageError(`layer index ${s} is out of range: VGG19 has layers 1 (relu1_1) to 16 (relu5_4)`);
  }
  const lower = s.toLowerCase();
  if (RELU_LAYERS.includes(lower)) return lower;
  throw new UsageError(
    `unknown layer "${spec}": use relu1_1 .. relu5_4 (${RELU_LAYERS.join(", ")}) or an index 1..16`,
  );
}

/** Number of poolings between the input and a layer's ReLU. */
export function poolsBefore(relu: string): number {
  const conv = `conv${relu.slice(4)}`;
  const at = VGG19_ARCH.indexOf(conv as (typeof VGG19_ARCH)[number]);
  return VGG19_ARCH.slice(0, at).filter((l) => l === "pool").length;
}

/** Spatial size of a layer's activation for an input of the given size (each pooling floors the halving). */
export function featureSize(height: number, width: number, relu: string): [number, number] {
  let h = height;
  let w = width;
  for (let i = 0; i < poolsBefore(relu); i++) {
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
  }
  return [h, w];
}

/** Number of channels of a layer's activation. */
export function channelsOf(relu: string): number {
  const block = Number(relu[4]);
  return [64, 128, 256, 512, 512][block - 1] as number;
}

/** The layer of `layers` that lies deepest in the network, where the network can be cut. */
export function deepest(layers: readonly string[]): string {
  let best = RELU_LAYERS[0] as string;
  for (const l of layers) if (RELU_LAYERS.indexOf(l) > RELU_LAYERS.indexOf(best)) best = l;
  return best;
}
