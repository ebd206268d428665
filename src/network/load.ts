import fs from "node:fs";
import path from "node:path";
import { StylegramError } from "../errors.js";
import { HDF5_SIGNATURE, loadKerasH5 } from "./formats/keras-h5.js";
import { loadManifestWeights } from "./formats/manifest.js";
import { parseSafetensors } from "./formats/safetensors.js";
import { VGG19_WIDTHS } from "./vgg-shapes.js";
import type { VggWeights } from "./weights.js";

/** The file name of Keras' VGG19 "notop" weights, as published and as cached. */
export const KERAS_VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5";

function startsWith(file: string, signature: Uint8Array): boolean {
  const head = new Uint8Array(signature.length);
  const fd = fs.openSync(file, "r");
  try {
    fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  return head.every((b, i) => b === signature[i]);
}

/** VGG19's weights from a safetensors file (the format's parser is shared with the browser). */
export async function loadSafetensors(
  file: string,
  widths: readonly number[] = VGG19_WIDTHS,
): Promise<VggWeights> {
  return parseSafetensors(await fs.promises.readFile(file), file, widths);
}

/**
 * Loads VGG19 weights from what `p` holds: a folder in the uint8 manifest format
 * (manifest.json), a folder holding Keras' VGG19 HDF5 file (a stylegram cache), a
 * Keras HDF5 file, or a safetensors file.
 */
export async function loadWeightsFrom(
  p: string,
  widths: readonly number[] = VGG19_WIDTHS,
): Promise<VggWeights> {
  if (!fs.existsSync(p)) throw new StylegramError(`weights path ${p} does not exist`);
  if (fs.statSync(p).isDirectory()) {
    if (fs.existsSync(path.join(p, "manifest.json"))) return loadManifestWeights(p, widths);
    const h5 = path.join(p, KERAS_VGG19_FILE);
    if (fs.existsSync(h5)) return loadKerasH5(h5, widths);
    throw new StylegramError(
      `weights folder ${p} holds neither manifest.json (uint8 manifest format) nor ${KERAS_VGG19_FILE}`,
    );
  }
  if (startsWith(p, HDF5_SIGNATURE)) return loadKerasH5(p, widths);
  if (p.endsWith(".safetensors")) return loadSafetensors(p, widths);
  throw new StylegramError(
    `weights file ${p} is neither HDF5 (Keras) nor .safetensors: cannot tell how to read it`,
  );
}

/**
 * Whether loading weights from `p` reads HDF5 (and so loads h5wasm, which costs
 * memory): Keras files and the cache do; the manifest and safetensors do not.
 */
export function readsHdf5(p: string | undefined): boolean {
  if (p === undefined || p === "") return true;
  if (p.endsWith(".safetensors")) return false;
  return !fs.existsSync(path.join(p, "manifest.json"));
}
