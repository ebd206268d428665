// stylegram in a browser page: stylize() and computeLoss() with the Node library's option names,
// computed in a Web Worker on WebGPU or onnxruntime-web's wasm build. docs/browser.md describes it.

import { UsageError } from "../errors.js";
import type { RgbImage } from "../image/image.js";
import type { VggWeights } from "../network/weights.js";
import type { ObjectiveOptions } from "../objective/options.js";
import { checkOption } from "../options/check.js";
import type { StylizeOptions } from "../stylize/options.js";
import { describeValue, functionValue, imageValue } from "../validate.js";
import { type AdapterReport, adapterReport } from "./device.js";
import type { BrowserImage, WireImage } from "./images.js";
import {
  type BrowserDeviceRequest,
  type BrowserLoss,
  type BrowserProgress,
  type BrowserStage,
  type BrowserStylizeResult,
  type FromWorker,
  fromWire,
  type RunSettings,
  type ToWorker,
} from "./protocol.js";
import { type DownloadProgress, WEIGHTS_DESCRIPTOR, type WeightsSource } from "./weights.js";

export {
  DivergedError,
  OutOfMemoryError,
  StoppedBeforeStartError,
  StoppedError,
  StylegramError,
  UsageError,
} from "../errors.js";
export type { RgbImage } from "../image/image.js";
export type { LossTerms } from "../objective/evaluator.js";
export type { ObjectiveOptions } from "../objective/options.js";
export type { AdapterReport } from "./device.js";
export type { BrowserImage } from "./images.js";
export type {
  BrowserDevice,
  BrowserDeviceRequest,
  BrowserLoss,
  BrowserProgress,
  BrowserStage,
  BrowserStylizeResult,
} from "./protocol.js";
export type { DownloadProgress, WeightsDescriptor } from "./weights.js";

/**
 * The weights: the URL of a weights descriptor (stylegram-weights.json, which names the file and its
 * SHA-256), a file's URL with its SHA-256, or weights already loaded. Default: the descriptor beside
 * this module, on the origin that served it.
 */
export type BrowserWeights = string | URL | { url: string | URL; sha256: string } | VggWeights;

/** What the browser takes besides the Node library's options (docs/browser.md). */
interface BrowserParameters {
  device?: BrowserDeviceRequest;
  weights?: BrowserWeights;
  /** The weights' download (or their reading from the browser's cache). */
  onDownload?: (p: DownloadProgress) => void;
}

export interface BrowserStylizeOptions
  extends Omit<
      StylizeOptions,
      | "content"
      | "styles"
      | "masks"
      | "styleMasks"
      | "init"
      | "weights"
      | "device"
      | "targetCache"
      | "onProgress"
      | "onStage"
      | "onSnapshot"
    >,
    BrowserParameters {
  content: BrowserImage;
  styles: readonly BrowserImage[];
  masks?: readonly BrowserImage[];
  styleMasks?: readonly (BrowserImage | null)[];
  init?: "noise" | "content" | "style" | { image: BrowserImage };
  onProgress?: (p: BrowserProgress) => void;
  onStage?: (s: BrowserStage) => void;
  /** The best picture so far, every `snapshotEvery` iterations. */
  onSnapshot?: (image: ImageData, iteration: number) => void;
  /** Also return the picture as a PNG Blob. */
  png?: boolean;
}

export interface BrowserLossRequest extends BrowserParameters {
  content: BrowserImage;
  styles: readonly BrowserImage[];
  /** The picture whose loss is computed, of the content image's size. */
  image: BrowserImage;
  options?: ObjectiveOptions;
  threads?: number;
  tile?: number;
}

const moduleUrl = import.meta.url;
/** This module's base: the worker, onnxruntime-web's files and the weights' descriptor lie beside it. */
const here = (file: string) => new URL(file, moduleUrl).href;

/** Relative URLs are the page's, as an <img src> would take them. */
const base = () => (globalThis.document?.baseURI ?? globalThis.location?.href ?? moduleUrl) as string;

function wireImage(name: string, v: unknown): WireImage {
  if (v instanceof URL) return v.href;
  if (typeof v === "string") {
    if (v.trim() === "") throw new UsageError(`${name} must be an image's URL, got the empty string`);
    return new URL(v, base()).href;
  }
  if (
    (typeof Blob !== "undefined" && v instanceof Blob) ||
    (typeof ImageBitmap !== "undefined" && v instanceof ImageBitmap) ||
    (typeof ImageData !== "undefined" && v instanceof ImageData)
  )
    return v as WireImage;
  if (typeof v === "object" && v !== null && "data" in v) {
    imageValue(name, v);
    return v as RgbImage;
  }
  throw new UsageError(
    `${name} must be an image: a URL, a Blob or File, an ImageBitmap, ImageData or an RgbImage { width, height, data }, got ${describeValue(v)}`,
    { option: name.split(/[[.]/)[0] as string },
  );
}

function wireImages(name: string, v: unknown): WireImage[] {
  if (!Array.isArray(v))
    throw new UsageError(`${name} must be a list (array) of images, got ${describeValue(v)}`, {
      option: name,
    });
  return v.map((x, i) => wireImage(`${name}[${i}]`, x));
}

/** "wasm" is the run's "cpu"; the Node library's name is refused with the browser's. */
function wireDevice(v: unknown): "cpu" | "webgpu" | "auto" | undefined {
  if (v === undefined || v === "webgpu" || v === "auto") return v;
  if (v === "wasm") return "cpu";
  const hint = v === "cpu" ? ' (in a browser the CPU is "wasm")' : "";
  throw new UsageError(`device must be one of "webgpu", "wasm", "auto"${hint}, got ${describeValue(v)}`, {
    option: "device",
  });
}

function wireWeights(v: unknown): { source: WeightsSource; loaded?: VggWeights } {
  if (v === undefined) return { source: here(WEIGHTS_DESCRIPTOR) };
  if (v instanceof Map) return { source: here(WEIGHTS_DESCRIPTOR), loaded: v as VggWeights };
  if (typeof v === "string" || v instanceof URL) return { source: new URL(String(v), base()).href };
  const f = v as { url?: unknown; sha256?: unknown };
  if (
    typeof f === "object" &&
    f !== null &&
    (typeof f.url === "string" || f.url instanceof URL) &&
    typeof f.sha256 === "string"
  )
    return { source: { url: new URL(String(f.url), base()).href, sha256: f.sha256 } };
  throw new UsageError(
    `weights must be a weights descriptor's URL, { url, sha256 } or loaded weights (a Map), got ${describeValue(v)}`,
    { option: "weights" },
  );
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  on?: Partial<{
    progress: (p: BrowserProgress) => void;
    stage: (s: BrowserStage) => void;
    snapshot: (image: ImageData, iteration: number) => void;
    download: (p: DownloadProgress) => void;
  }>;
}

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, Pending>();

function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(here("stylegram-worker.js"), { type: "module", name: "stylegram" });
  w.addEventListener("message", (e: MessageEvent<FromWorker>) => {
    const m = e.data;
    const p = pending.get(m.id);
    if (!p) return;
    // A callback that throws is the page's bug: it must not stop the run, nor hide it.
    const call = (f: (() => void) | undefined) => {
      try {
        f?.();
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    };
    switch (m.type) {
      case "progress":
        return call(() => p.on?.progress?.(m.progress));
      case "stage":
        return call(() => p.on?.stage?.(m.stage));
      case "snapshot":
        return call(() => p.on?.snapshot?.(m.image, m.iteration));
      case "download":
        return call(() => p.on?.download?.(m.progress));
      case "error":
        pending.delete(m.id);
        return p.reject(fromWire(m.error));
      default:
        pending.delete(m.id);
        return p.resolve("result" in m ? m.result : m.adapter);
    }
  });
  w.addEventListener("error", (e) => {
    // The worker could not start (its script missing, a browser without module workers) or crashed.
    const err = new Error(
      `stylegram's worker failed (${e.message || `could not load ${here("stylegram-worker.js")}`}): the module's folder must hold stylegram-worker.js and onnxruntime-web's files beside stylegram-browser.js`,
    );
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    worker = undefined;
  });
  worker = w;
  return w;
}

function send<T>(message: (id: number) => ToWorker, on: Pending["on"], signal?: AbortSignal): Promise<T> {
  const id = nextId++;
  const w = getWorker();
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject, ...(on ? { on } : {}) });
    w.postMessage(message(id));
    if (signal) {
      const abort = () => w.postMessage({ type: "abort", id } satisfies ToWorker);
      if (signal.aborted) abort();
      else signal.addEventListener("abort", abort, { once: true });
    }
  });
}

function checkCallbacks(o: Record<string, unknown>): void {
  for (const name of ["onProgress", "onStage", "onSnapshot"])
    if (o[name] !== undefined) checkOption(name, o[name]);
  if (o.onDownload !== undefined) functionValue("onDownload", o.onDownload);
  if (o.png !== undefined && typeof o.png !== "boolean")
    throw new UsageError(`png must be true or false, got ${describeValue(o.png)}`, { option: "png" });
}

/**
 * Repaints the content image in the style of the style image(s), in this browser: the Node library's
 * stylize() with its options, on WebGPU or wasm, in a Web Worker. Resolves to the picture as ImageData
 * (and a PNG Blob with `png: true`); an AbortSignal stops it with the best picture so far.
 */
export async function stylize(options: BrowserStylizeOptions): Promise<BrowserStylizeResult> {
  if (typeof options !== "object" || options === null)
    throw new UsageError("stylize() takes an options object");
  const o = options as unknown as Record<string, unknown>;
  checkCallbacks(o);
  const {
    onProgress,
    onStage,
    onSnapshot,
    onDownload,
    signal,
    png,
    weights,
    device,
    content,
    styles,
    masks,
    styleMasks,
    init,
    ...rest
  } = options;
  const w = wireWeights(weights);
  const wire: Record<string, unknown> = { ...rest };
  if (content === undefined)
    throw new UsageError("content is required: a photo's URL, Blob, ImageBitmap or ImageData", {
      option: "content",
    });
  wire.content = wireImage("content", content);
  wire.styles = wireImages("styles", styles);
  if (masks !== undefined) wire.masks = wireImages("masks", masks);
  if (styleMasks !== undefined) {
    if (!Array.isArray(styleMasks))
      throw new UsageError(`styleMasks must be a list (array), got ${describeValue(styleMasks)}`, {
        option: "styleMasks",
      });
    wire.styleMasks = styleMasks.map((m, i) => (m === null ? null : wireImage(`styleMasks[${i}]`, m)));
  }
  if (init !== undefined)
    wire.init =
      typeof init === "object" && init !== null && "image" in init
        ? { image: wireImage("init.image", init.image) }
        : init;
  const d = wireDevice(device);
  if (d !== undefined) wire.device = d;
  if (w.loaded) wire.weights = w.loaded;
  if (rest.snapshotEvery === undefined && onSnapshot) wire.snapshotEvery = 1;
  const settings: RunSettings = {
    weights: w.source,
    wants: { progress: !!onProgress, snapshot: !!onSnapshot, stage: !!onStage, download: !!onDownload },
    png: png === true,
  };
  return send<BrowserStylizeResult>(
    (id) => ({ type: "stylize", id, options: wire, settings }),
    {
      ...(onProgress ? { progress: onProgress } : {}),
      ...(onStage ? { stage: onStage } : {}),
      ...(onSnapshot ? { snapshot: onSnapshot } : {}),
      ...(onDownload ? { download: onDownload } : {}),
    },
    signal,
  );
}

/**
 * Every term of the objective, the weighted total and its gradient for one picture, in this browser
 * (the Node library's computeLoss()), with `device` saying where it ran.
 */
export async function computeLoss(request: BrowserLossRequest): Promise<BrowserLoss> {
  if (typeof request !== "object" || request === null)
    throw new UsageError("computeLoss() takes a request object");
  checkCallbacks(request as unknown as Record<string, unknown>);
  const { onDownload, weights, device, content, styles, image, ...rest } = request;
  const w = wireWeights(weights);
  const wire: Record<string, unknown> = { ...rest };
  if (content === undefined) throw new UsageError("content is required", { option: "content" });
  if (image === undefined)
    throw new UsageError("image is required: the picture whose loss is computed", { option: "image" });
  wire.content = wireImage("content", content);
  wire.image = wireImage("image", image);
  wire.styles = wireImages("styles", styles);
  const d = wireDevice(device);
  if (d !== undefined) wire.device = d;
  if (w.loaded) wire.weights = w.loaded;
  const settings: RunSettings = {
    weights: w.source,
    wants: { progress: false, snapshot: false, stage: false, download: !!onDownload },
    png: false,
  };
  return send<BrowserLoss>(
    (id) => ({ type: "loss", id, request: wire, settings }),
    onDownload ? { download: onDownload } : undefined,
  );
}

/**
 * The WebGPU adapter this browser offers, before any run: whether there is one, whether it is a
 * software one (which `device: "auto"` passes over for wasm), its name and largest buffer.
 */
export function gpuAdapter(): Promise<AdapterReport> {
  return adapterReport();
}

/** Ends the worker: the weights, the compiled graphs and the GPU's memory are freed. */
export function dispose(): void {
  worker?.terminate();
  worker = undefined;
  for (const p of pending.values()) p.reject(new Error("stylegram was disposed"));
  pending.clear();
}
