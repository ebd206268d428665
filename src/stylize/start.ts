import { UsageError } from "../errors.js";
import { type RgbImage, toNetworkInput } from "../image/image.js";
import type { ImageSource } from "../image/source.js";
import type { Environment } from "./environment.js";
import { gaussianNoise } from "./noise.js";
import type { Init } from "./options.js";

/** Noise of this standard deviation (pixel units) around the mean image, as the reference implementations use. */
const NOISE_STD = 0.001 * 255;

/** The starting point of the optimisation, in the network's input space, at the content's size. */
export async function initialImage(
  env: Environment,
  init: Init,
  content: RgbImage,
  firstStyle: ImageSource,
  seed: number,
): Promise<Float32Array> {
  const { width, height } = content;
  if (init === "content") return toNetworkInput(content);
  if (init === "noise") return gaussianNoise(3 * width * height, seed, NOISE_STD);
  const src = init === "style" ? firstStyle : init.image;
  // A file or the style image is resized to the output; an image passed in memory must already fit.
  if (typeof src === "string") return toNetworkInput(await env.loadImage(src, { exact: { width, height } }));
  if (init === "style") {
    return toNetworkInput(await env.resizeImage(src, width, height));
  }
  if (src.width !== width || src.height !== height) {
    throw new UsageError(
      `the init image is ${src.width}x${src.height}; it must have the output size ${width}x${height}`,
    );
  }
  return toNetworkInput(src);
}
