// The library's public API: what a program calls. docs/library.md describes it.

// Many pictures, and video without flicker: docs/batch.md, docs/video.md.
export {
  type BatchItem,
  type BatchOptions,
  type BatchResult,
  type ItemReport,
  stylizeBatch,
} from "./api/batch.js";
// Stylize, check before a run, compute the loss of a picture.
export { computeLoss, type LossRequest } from "./api/loss.js";
export { type FrameReport, stylizeVideo, type VideoOptions, type VideoResult } from "./api/video.js";
// Errors a caller can meet: each a StylegramError with a message meant for a person.
export {
  DivergedError,
  OutOfMemoryError,
  StoppedBeforeStartError,
  StoppedError,
  StylegramError,
  UsageError,
} from "./errors.js";
// Images in and out.
export { fromNetworkInput, type RgbImage, toNetworkInput } from "./image/image.js";
export { encodeImage, loadImage, loadMask, resizeImage, saveImage } from "./image/io.js";
export type { Mask } from "./image/masks.js";
export type { ImageSource } from "./image/source.js";
// The weights: fetched into the cache, or loaded from a folder or file.
export { cacheDir } from "./models/cache.js";
export { fetchModel, resolveWeightsFor, type WeightsRequest } from "./models/resolve.js";
export { loadWeightsFrom } from "./network/load.js";
export type { VggWeights } from "./network/weights.js";
// The objective, for callers who run their own optimisation.
export { type Evaluation, type LossTerms, Objective, type ObjectiveInit } from "./objective/objective.js";
export type { ObjectiveOptions } from "./objective/options.js";
export { TargetCache } from "./objective/targets.js";
export { DEFAULTS } from "./options/defaults.js";
export type {
  Colors,
  Init,
  PrecisionRequest,
  Progress,
  Stage,
  StylizeOptions,
} from "./stylize/options.js";
export { STYLIZE_DEFAULTS } from "./stylize/options.js";
export { checkStylize, type StylizeResult, stylize } from "./stylize/stylize.js";
export { VERSION } from "./version.js";
