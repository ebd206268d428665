/** One convolution's parameters, in ONNX / PyTorch layout: kernel [out, in, kh, kw], RGB input order. */
export interface ConvWeights {
  readonly kernel: Float32Array;
  readonly kernelShape: readonly [number, number, number, number];
  readonly bias: Float32Array;
}

/** VGG19's 16 convolutions by name (conv1_1 .. conv5_4). */
export type VggWeights = ReadonlyMap<string, ConvWeights>;
