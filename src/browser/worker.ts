import { computeLossIn, type LossRequest } from "../api/loss-core.js";
import type { RgbImage } from "../image/image.js";
import { cores, ort } from "../runtime/platform.js";
import { stylizeIn } from "../stylize/core.js";
import type { StylizeOptions } from "../stylize/options.js";
import { type AdapterReport, adapterReport } from "./device.js";
import { BrowserEnvironment } from "./environment.js";
import { ImageStore, toImageData, type WireImage } from "./images.js";
import {
  type BrowserDevice,
  browserDevice,
  type FromWorker,
  type RunSettings,
  type ToWorker,
  toWire,
} from "./protocol.js";

/**
 * The Web Worker that runs stylize() and computeLoss() for the page's module (index.ts), so that the
 * page never freezes: the same run as Node's (stylize/core.ts, api/loss-core.ts) in a browser
 * environment. One request at a time; an abort reaches the run between two evaluations.
 */

interface WorkerScope {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  addEventListener(type: "message", listener: (e: MessageEvent<ToWorker>) => void): void;
}
const scope = globalThis as unknown as WorkerScope;
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

let adapter: Promise<AdapterReport> | undefined;
const getAdapter = () => {
  adapter ??= adapterReport();
  return adapter;
};

let threadsSet = false;
/** onnxruntime-web takes its threads once, before its first session: all cores where the page may use them. */
function setThreads(threads: unknown): void {
  if (threadsSet) return;
  threadsSet = true;
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const n = typeof threads === "number" && threads >= 1 ? Math.floor(threads) : cores();
  ort.env.wasm.numThreads = isolated ? Math.min(n, cores()) : 1;
}

const controllers = new Map<number, AbortController>();
let queue: Promise<unknown> = Promise.resolve();

/** The images of a request registered in its store: each one's name or pixels, as the run takes them. */
function images(store: ImageStore, o: Record<string, unknown>, keys: readonly string[]): void {
  const one = (v: unknown) => (v === null || v === undefined ? v : store.add(v as WireImage));
  for (const k of keys) {
    const v = o[k];
    if (Array.isArray(v)) o[k] = v.map(one);
    else if (v !== undefined) o[k] = one(v);
  }
  const init = o.init as { image?: unknown } | undefined;
  if (typeof init === "object" && init !== null && init.image !== undefined)
    o.init = { ...init, image: one(init.image) };
}

function environment(id: number, settings: RunSettings, signal: AbortSignal, report: AdapterReport) {
  return new BrowserEnvironment(
    new ImageStore(signal),
    report,
    settings.weights,
    settings.wants.download ? (progress) => post({ type: "download", id, progress }) : undefined,
    signal,
  );
}

async function pngOf(img: RgbImage): Promise<Blob> {
  const canvas = new OffscreenCanvas(img.width, img.height);
  (canvas.getContext("2d") as OffscreenCanvasRenderingContext2D).putImageData(toImageData(img), 0, 0);
  return canvas.convertToBlob({ type: "image/png" });
}

async function runStylize(
  id: number,
  wire: Record<string, unknown>,
  settings: RunSettings,
  signal: AbortSignal,
) {
  setThreads(wire.threads);
  const env = environment(id, settings, signal, await getAdapter());
  const options = { ...wire };
  images(env.images, options, ["content", "styles", "masks", "styleMasks"]);
  const { wants } = settings;
  let device: BrowserDevice = "wasm";
  const result = await stylizeIn(env, {
    ...(options as unknown as StylizeOptions),
    signal,
    onStage: (s) => {
      if (s.device !== undefined) device = browserDevice(s.device);
      if (!wants.stage) return;
      const { device: _, ...rest } = s;
      post({ type: "stage", id, stage: s.device === undefined ? rest : { ...rest, device } });
    },
    onProgress: async (p) => {
      if (wants.progress) post({ type: "progress", id, progress: { ...p, device: browserDevice(p.device) } });
      // The run awaits this: a macrotask's pause lets the page's abort message in between two evaluations.
      await new Promise((resolve) => setTimeout(resolve, 0));
    },
    ...(wants.snapshot
      ? {
          onSnapshot: (img, iteration) => {
            const image = toImageData(img);
            post({ type: "snapshot", id, image, iteration }, [image.data.buffer]);
          },
        }
      : {}),
  });
  const image = toImageData(result.image);
  const png = settings.png ? await pngOf(result.image) : undefined;
  post(
    {
      type: "stylized",
      id,
      result: {
        image,
        ...(png ? { png } : {}),
        loss: result.loss,
        iterations: result.iterations,
        seconds: result.seconds,
        reason: result.reason,
        device,
      },
    },
    [image.data.buffer],
  );
}

async function runLoss(
  id: number,
  wire: Record<string, unknown>,
  settings: RunSettings,
  signal: AbortSignal,
) {
  setThreads(wire.threads);
  const report = await getAdapter();
  const env = environment(id, settings, signal, report);
  const request = { ...wire };
  images(env.images, request, ["content", "image", "styles"]);
  const device = await env.chooseDevice((request.device as "cpu" | "webgpu" | "auto" | undefined) ?? "auto");
  const e = await computeLossIn(env, request as unknown as LossRequest);
  post(
    {
      type: "loss",
      id,
      result: {
        total: e.total,
        content: e.content,
        style: e.style,
        tv: e.tv,
        ...(e.temporal === undefined ? {} : { temporal: e.temporal }),
        gradient: e.gradient,
        device: browserDevice(device.device),
      },
    },
    [e.gradient.buffer],
  );
}

scope.addEventListener("message", (e) => {
  const m = e.data;
  if (m.type === "abort") {
    controllers.get(m.id)?.abort();
    return;
  }
  if (m.type === "adapter") {
    void getAdapter().then((adapter) => post({ type: "adapter", id: m.id, adapter }));
    return;
  }
  const controller = new AbortController();
  controllers.set(m.id, controller);
  // One run at a time: a second waits for the first (they would share the GPU and the memory).
  queue = queue.then(async () => {
    try {
      if (m.type === "stylize") await runStylize(m.id, m.options, m.settings, controller.signal);
      else await runLoss(m.id, m.request, m.settings, controller.signal);
    } catch (err) {
      post({ type: "error", id: m.id, error: toWire(err) });
    } finally {
      controllers.delete(m.id);
    }
  });
});
