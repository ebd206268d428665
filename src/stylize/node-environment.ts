import { hasTransparency, loadMask, resizeImage } from "../image/io.js";

import { resolveImage, sourceSize } from "../image/source.js";
import { resolveWeights } from "../models/resolve.js";
import { readsHdf5 } from "../network/load.js";
import { HDF5_READER_BYTES } from "../objective/memory.js";
import { chooseDevice } from "../runtime/choose-device.js";
import { availableMemory } from "../runtime/platform.js";
import { probeWebGpu } from "../runtime/probe.js";
import type { Environment } from "./environment.js";

/** stylize() in Node: sharp for images, the file system and the cache for weights, the WebGPU probe. */
export const NODE_ENVIRONMENT: Environment = {
  loadImage: (src, options) => resolveImage(src, options),
  resizeImage,
  imageSize: sourceSize,
  hasTransparency: async (src) => typeof src === "string" && (await hasTransparency(src)),
  loadMask: (src) => loadMask(src),
  weights: resolveWeights,
  weightsReaderBytes: (w) =>
    typeof w !== "object" && readsHdf5(w ?? process.env.STYLEGRAM_WEIGHTS) ? HDF5_READER_BYTES : 0,
  chooseDevice: (request) => chooseDevice(request, probeWebGpu),
  availableMemory,
};
