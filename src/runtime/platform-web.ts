import type ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web/webgpu";

/**
 * platform.ts for a browser: the browser build (scripts/build-browser.ts) swaps platform.ts for this
 * module. onnxruntime-web has onnxruntime-node's API; its "wasm" provider is the CPU (PLATFORM says
 * which provider CompiledGraph asks for).
 */
export const PLATFORM: "node" | "web" = "web";

/** The same API as onnxruntime-node's (checked here by the compiler: the rest of src/ uses that one). */
export const ort: Pick<typeof ortNode, "InferenceSession" | "Tensor"> & { env: typeof ortWeb.env } = ortWeb;

export function cores(): number {
  return Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
}

/** WebAssembly's 32-bit memory: onnxruntime-web's heap cannot grow past 4 GiB, whatever the machine has. */
const WASM_HEAP = 4 * 2 ** 30;

/**
 * Memory a run may use: half of what the browser says the device has (navigator.deviceMemory, in GiB,
 * rounded and capped at 8 by the browser; 4 where it says nothing), and never more than the wasm heap.
 */
export function availableMemory(): number {
  const device = (globalThis.navigator as { deviceMemory?: number } | undefined)?.deviceMemory ?? 4;
  return Math.min(WASM_HEAP, (device * 2 ** 30) / 2);
}
