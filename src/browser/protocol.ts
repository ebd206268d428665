import {
  DivergedError,
  type MessagePart,
  type OptionRef,
  type OptionStyle,
  OutOfMemoryError,
  StoppedBeforeStartError,
  StoppedError,
  StylegramError,
  UsageError,
} from "../errors.js";
import type { LossTerms } from "../objective/evaluator.js";
import type { StopReason } from "../optim/types.js";
import type { Progress, Stage } from "../stylize/options.js";
import type { AdapterReport } from "./device.js";
import type { WireImage } from "./images.js";
import type { DownloadProgress, WeightsSource } from "./weights.js";

/**
 * The messages between the page's module (index.ts) and its Web Worker (worker.ts). Everything that
 * crosses is structured-cloneable: images as URLs, blobs, bitmaps or pixels; callbacks stay on the
 * page's side and the worker says when to call them.
 */

/** Where a browser run computes: WebGPU, or onnxruntime-web's wasm build (the run's "cpu" device). */
export type BrowserDevice = "webgpu" | "wasm";
export type BrowserDeviceRequest = BrowserDevice | "auto";

/** The run's device name as the browser calls it. */
export const browserDevice = (d: string): BrowserDevice => (d === "webgpu" ? "webgpu" : "wasm");

/** How the browser API writes an option in a message: as the library does, with the CPU called wasm. */
export const BROWSER_STYLE: OptionStyle = (r) => {
  const value = r.option === "device" && r.value === "cpu" ? "wasm" : r.value;
  return value === undefined ? r.option : `${r.option}: ${JSON.stringify(value)}`;
};

export interface RunSettings {
  /** The weights' descriptor or file (absolute URL), unless the options carry loaded weights. */
  weights: WeightsSource;
  /** Which callbacks the page has, so that the worker sends only what someone reads. */
  wants: { progress: boolean; snapshot: boolean; stage: boolean; download: boolean };
  png: boolean;
}

export type ToWorker =
  | { type: "stylize"; id: number; options: Record<string, unknown>; settings: RunSettings }
  | { type: "loss"; id: number; request: Record<string, unknown>; settings: RunSettings }
  | { type: "abort"; id: number }
  | { type: "adapter"; id: number };

/** What stylize() resolves to in a browser. */
export interface BrowserStylizeResult {
  image: ImageData;
  /** The picture as a PNG file, when asked for ({ png: true }). */
  png?: Blob;
  loss: LossTerms;
  iterations: number;
  seconds: number;
  reason: StopReason;
  device: BrowserDevice;
}

/** What computeLoss() resolves to in a browser: the terms, the gradient, and where it ran. */
export interface BrowserLoss extends LossTerms {
  gradient: Float32Array;
  device: BrowserDevice;
}

export type BrowserProgress = Omit<Progress, "device"> & { device: BrowserDevice };
export type BrowserStage = Omit<Stage, "device"> & { device?: BrowserDevice };

/** An error as it crosses: a StylegramError keeps its kind, its message's parts and its option. */
export interface WireError {
  name: string;
  message: string;
  parts?: readonly MessagePart[];
  option?: string;
  expected?: string;
  stack?: string;
}

export type FromWorker =
  | { type: "stage"; id: number; stage: BrowserStage }
  | { type: "progress"; id: number; progress: BrowserProgress }
  | { type: "snapshot"; id: number; image: ImageData; iteration: number }
  | { type: "download"; id: number; progress: DownloadProgress }
  | { type: "stylized"; id: number; result: BrowserStylizeResult }
  | { type: "loss"; id: number; result: BrowserLoss }
  | { type: "adapter"; id: number; adapter: AdapterReport }
  | { type: "error"; id: number; error: WireError };

/** An image option's values as they cross (the page resolves relative URLs first). */
export type WireImages = WireImage | readonly WireImage[];

/** The parts of a message with the CPU called wasm, as the browser API names it. */
function browserParts(parts: readonly MessagePart[]): MessagePart[] {
  return parts.map((p) =>
    typeof p === "object" && p.option === "device" && p.value === "cpu"
      ? ({ ...p, value: "wasm" } as OptionRef)
      : p,
  );
}

export function toWire(e: unknown): WireError {
  if (e instanceof StylegramError) {
    return {
      name: e.name,
      message: e.render(BROWSER_STYLE),
      parts: browserParts(e.parts),
      ...(e instanceof UsageError && e.option !== undefined ? { option: e.option } : {}),
      ...(e instanceof UsageError && e.expected !== undefined ? { expected: e.expected } : {}),
    };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
}

/** The error again, of its own class, so that a page can test `instanceof UsageError`. */
export function fromWire(w: WireError): Error {
  const parts = w.parts ?? [w.message];
  let e: Error;
  switch (w.name) {
    case "UsageError":
      e = new UsageError(parts, {
        ...(w.option === undefined ? {} : { option: w.option }),
        ...(w.expected === undefined ? {} : { expected: w.expected }),
      });
      break;
    case "OutOfMemoryError":
      e = new OutOfMemoryError(parts, { exitCode: 2 });
      break;
    case "DivergedError":
      e = new DivergedError(parts);
      break;
    case "StoppedError":
      e = new StoppedError();
      break;
    case "StoppedBeforeStartError":
      e = new StoppedBeforeStartError();
      break;
    case "StylegramError":
      e = new StylegramError(parts);
      break;
    default:
      e = new Error(w.message);
      e.name = w.name;
      if (w.stack) e.stack = w.stack;
      return e;
  }
  // The worker's wording (wasm for the CPU), whatever the class's constructor says.
  Object.defineProperty(e, "message", { value: w.message, writable: true, configurable: true });
  return e;
}
