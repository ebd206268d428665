import {
  type BOUNDS,
  type COLORS,
  type DEVICES,
  defaultOf,
  type INITS,
  type LINE_SEARCHES,
  type OPTIMIZERS,
  type POOLINGS,
  type PRECISIONS,
  type PRECONDITIONERS,
} from "./registry.js";

type Of<T extends readonly string[]> = T[number];

/**
 * The defaults of the library, `stylegram loss` and `stylegram`, read from the option registry
 * (src/options/registry.ts), where each is stated once.
 */
export const DEFAULTS = {
  contentLayers: defaultOf<readonly string[]>("contentLayers"),
  styleLayers: defaultOf<readonly string[]>("styleLayers"),
  contentWeight: defaultOf<number>("contentWeight"),
  styleWeight: defaultOf<number>("styleWeight"),
  tvWeight: defaultOf<number>("tvWeight"),
  temporalWeight: defaultOf<number>("temporalWeight"),
  pooling: defaultOf<Of<typeof POOLINGS>>("pooling"),
  size: defaultOf<number>("size"),
  styleScale: defaultOf<number>("styleScale"),
  iterations: defaultOf<number>("iterations"),
  init: defaultOf<Of<typeof INITS>>("init"),
  seed: defaultOf<number>("seed"),
  optimizer: defaultOf<Of<typeof OPTIMIZERS>>("optimizer"),
  historySize: defaultOf<number>("historySize"),
  lineSearch: defaultOf<Of<typeof LINE_SEARCHES>>("lineSearch"),
  lbfgsLearningRate: defaultOf<{ lbfgs: number }>("learningRate").lbfgs,
  adamLearningRate: defaultOf<{ adam: number }>("learningRate").adam,
  precision: defaultOf<Of<typeof PRECISIONS>>("precision"),
  precondition: defaultOf<Of<typeof PRECONDITIONERS>>("precondition"),
  bounds: defaultOf<Of<typeof BOUNDS>>("bounds"),
  stopBelow: defaultOf<number>("stopBelow"),
  colors: defaultOf<Of<typeof COLORS>>("colors"),
  device: defaultOf<Of<typeof DEVICES>>("device"),
  printEvery: defaultOf<number>("printEvery"),
} as const;
