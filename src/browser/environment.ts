import type { VggWeights } from "../network/weights.js";
import type { HistoryKind } from "../optim/history.js";
import { availableMemory } from "../runtime/platform.js";
import type { Environment } from "../stylize/environment.js";
import { type AdapterReport, chooseBrowserDevice } from "./device.js";
import type { ImageStore } from "./images.js";
import { type DownloadProgress, loadBrowserWeights, type WeightsSource } from "./weights.js";

/**
 * stylize() and computeLoss() in a browser's Web Worker: images decoded by the browser (images.ts),
 * the weights fetched, checked and cached (weights.ts), the device from the WebGPU adapter (device.ts),
 * and the adapter's largest buffer for the plan. (runtime/platform.js is platform-web.ts in this build.)
 */
export class BrowserEnvironment implements Environment {
  constructor(
    readonly images: ImageStore,
    private readonly adapter: AdapterReport,
    private readonly source: WeightsSource,
    private readonly onDownload?: (p: DownloadProgress) => void,
    private readonly signal?: AbortSignal,
    /** The L-BFGS history: plain JavaScript, under 1% of an evaluation here (docs/browser.md, Measured). */
    readonly lbfgsHistory: HistoryKind = "js",
  ) {}

  loadImage = (
    src: Parameters<Environment["loadImage"]>[0],
    options?: Parameters<Environment["loadImage"]>[1],
  ) => this.images.load(src, options);
  resizeImage = (img: Parameters<Environment["resizeImage"]>[0], width: number, height: number) =>
    this.images.load(img, { exact: { width, height } });
  imageSize = (src: Parameters<Environment["imageSize"]>[0]) => this.images.size(src);
  hasTransparency = (src: Parameters<Environment["hasTransparency"]>[0]) => this.images.hasTransparency(src);
  loadMask = (src: Parameters<Environment["loadMask"]>[0]) => this.images.mask(src);

  weights = async (w: string | VggWeights | undefined): Promise<VggWeights> => {
    if (w !== undefined && typeof w !== "string") return w;
    return loadBrowserWeights(w ?? this.source, this.onDownload, this.signal);
  };

  weightsReaderBytes = () => 0;
  chooseDevice = async (request: Parameters<Environment["chooseDevice"]>[0]) =>
    chooseBrowserDevice(request, this.adapter);
  availableMemory = availableMemory;
  maxBindingBytes = () => this.adapter.maxBindingBytes;
}
