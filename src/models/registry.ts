import { KERAS_VGG19_FILE } from "../network/load.js";

/** A file of published weights that stylegram can fetch. */
export interface ModelSpec {
  name: string;
  file: string;
  url: string;
  /** The checksum Keras itself pins for this file. */
  md5: string;
  /** Environment variable that points at a mirror of the same file. */
  urlEnv: string;
  description: string;
}

export const MODELS: Readonly<Record<string, ModelSpec>> = {
  vgg19: {
    name: "vgg19",
    file: KERAS_VGG19_FILE,
    url: `https://github.com/fchollet/deep-learning-models/releases/download/v0.1/${KERAS_VGG19_FILE}`,
    md5: "253f8cb515780f3b799900260a226db6",
    urlEnv: "STYLEGRAM_VGG19_URL",
    description: "VGG19 ImageNet weights (Keras 'notop' HDF5, about 80 MB)",
  },
};
