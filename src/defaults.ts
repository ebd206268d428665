import type { Pooling } from "./network/vgg19.js";

/**
 * The one set of defaults for the whole project: the library, `stylegram loss`
 * and `stylegram` itself all read these.
 */
export const DEFAULTS = {
  contentLayers: ["relu4_2"],
  styleLayers: ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
  contentWeight: 5,
  styleWeight: 500,
  tvWeight: 1e-3,
  pooling: "max" as Pooling,
} as const;
