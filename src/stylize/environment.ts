import type { RgbImage } from "../image/image.js";
import type { Mask } from "../image/masks.js";
import type { LoadOptions, Size } from "../image/size.js";
import type { ImageSource } from "../image/source.js";
import type { VggWeights } from "../network/weights.js";
import type { HistoryKind } from "../optim/history.js";
import type { DeviceChoice, DeviceRequest } from "../runtime/device.js";

/**
 * What stylize() needs of the platform it runs on: decoding images, finding the weights, choosing the
 * device, knowing the memory. Node's (node-environment.ts: sharp, the file system, the weights cache,
 * the WebGPU probe) and a browser's (src/browser/: canvas, fetch and the Cache API, the adapter) are
 * two implementations; the run itself (core.ts) is one.
 */
export interface Environment {
  /** An image source decoded, resized as asked. */
  loadImage(src: ImageSource, options?: LoadOptions): Promise<RgbImage>;
  resizeImage(img: RgbImage, width: number, height: number): Promise<RgbImage>;
  /** Its size, from the header where it is a file. */
  imageSize(src: ImageSource): Promise<Size>;
  /** Whether a file's pixels are not all opaque (they are painted onto white). */
  hasTransparency(src: ImageSource): Promise<boolean>;
  loadMask(src: ImageSource): Promise<Mask>;
  weights(w: string | VggWeights | undefined): Promise<VggWeights>;
  /** Extra memory that reading these weights costs (Node's HDF5 reader), in bytes. */
  weightsReaderBytes(w: string | VggWeights | undefined): number;
  chooseDevice(request: DeviceRequest): Promise<DeviceChoice>;
  /** Memory a run may use when the caller sets no limit, in bytes. */
  availableMemory(): number;
  /**
   * The most bytes one tensor may take on the GPU (the adapter's maxStorageBufferBindingSize), where
   * it is known; the plan tiles a picture whose activations are larger (see PlanRequest).
   */
  maxBindingBytes?(): number | undefined;
  /** Where L-BFGS keeps its history (default: onnxruntime's compact form, see src/optim/history.ts). */
  readonly lbfgsHistory?: HistoryKind;
}
