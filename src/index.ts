export { computeLoss, type LossRequest } from "./api/loss.js";
export {
  DivergedError,
  OutOfMemoryError,
  StoppedBeforeStartError,
  StoppedError,
  StylegramError,
  UsageError,
} from "./errors.js";
export { keepOriginalColors, matchColorHistogram } from "./image/colors.js";
export { fromNetworkInput, MEAN_RGB, type RgbImage, toNetworkInput } from "./image/image.js";
export {
  encodeImage,
  formatForPath,
  type LoadOptions,
  loadImage,
  resizeImage,
  saveImage,
} from "./image/io.js";
export { loadMask, type Mask } from "./image/masks.js";
export type { ImageSource } from "./image/source.js";
export { cacheDir } from "./models/cache.js";
export { MODELS, type ModelSpec } from "./models/registry.js";
export { fetchModel, resolveWeightsFor, type WeightsRequest } from "./models/resolve.js";
export { loadKerasH5 } from "./network/formats/keras-h5.js";
export { loadManifestWeights } from "./network/formats/manifest.js";
export { encodeSafetensors, loadSafetensors } from "./network/formats/safetensors.js";
export { parseLayer, RELU_LAYERS } from "./network/layers.js";
export { loadWeightsFrom } from "./network/load.js";
export type { Pooling } from "./network/vgg19.js";
export type { ConvWeights, VggWeights } from "./network/weights.js";
export {
  type Evaluation,
  type LossTerms,
  Objective,
  type ObjectiveInit,
  type Precision,
} from "./objective/objective.js";
export type { ObjectiveOptions } from "./objective/options.js";
export { adam } from "./optim/adam.js";
export { lbfgs } from "./optim/lbfgs.js";
export type { Differentiable, MinimizeResult } from "./optim/types.js";
export { DEFAULTS } from "./options/defaults.js";
export {
  COLORS,
  type Colors,
  type Init,
  PRECISIONS,
  type PrecisionRequest,
  type Progress,
  STYLIZE_DEFAULTS,
  type Stage,
  type StylizeOptions,
} from "./stylize/options.js";
export { checkStylize, type StylizeResult, stylize } from "./stylize/stylize.js";
export { VERSION } from "./version.js";
