import { message, opt, StylegramError } from "../errors.js";
import type { DeviceChoice, DeviceRequest } from "../runtime/device.js";

/**
 * The device in a browser: WebGPU where navigator.gpu gives an adapter, else onnxruntime-web's wasm
 * build (the "cpu" device of the run, called "wasm" by the browser API). `auto` refuses software
 * adapters (SwiftShader, which Chrome offers where it has no GPU): wasm is faster than them.
 */

/** The parts of WebGPU's adapter read here (the DOM library of TypeScript has no WebGPU types). */
export interface Adapter {
  readonly info?: {
    vendor?: string;
    architecture?: string;
    device?: string;
    description?: string;
    isFallbackAdapter?: boolean;
  };
  /** Older browsers said it here (it moved to info). */
  readonly isFallbackAdapter?: boolean;
  readonly limits: { maxStorageBufferBindingSize: number; maxBufferSize: number };
}

interface Gpu {
  requestAdapter(options?: { powerPreference?: "high-performance" | "low-power" }): Promise<Adapter | null>;
}

/** What the page or a test learns of the adapter, before any run. */
export interface AdapterReport {
  /** Whether navigator.gpu gave an adapter at all. */
  available: boolean;
  /** A software adapter (SwiftShader and the like): a CPU pretending to be a GPU. */
  software: boolean;
  /** vendor, architecture and description as the browser tells them. */
  name: string;
  /** The most bytes one storage binding may hold. */
  maxBindingBytes?: number;
  /** Why there is none, when there is none. */
  problem?: string;
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|software|basic render/i;

function gpu(): Gpu | undefined {
  return (globalThis.navigator as { gpu?: Gpu } | undefined)?.gpu;
}

export function isSoftwareAdapter(a: Adapter): boolean {
  const i = a.info ?? {};
  return (
    i.isFallbackAdapter === true ||
    a.isFallbackAdapter === true ||
    SOFTWARE.test(`${i.architecture ?? ""} ${i.description ?? ""} ${i.device ?? ""}`)
  );
}

function nameOf(a: Adapter): string {
  const i = a.info ?? {};
  return [i.vendor, i.architecture, i.description].filter((s) => s && s.length > 0).join(" ") || "unnamed";
}

/** The adapter the browser offers (the one onnxruntime-web will take), described. */
export async function adapterReport(): Promise<AdapterReport> {
  const g = gpu();
  if (!g) {
    return {
      available: false,
      software: false,
      name: "",
      problem: globalThis.isSecureContext
        ? "this browser has no WebGPU (navigator.gpu is missing)"
        : "WebGPU needs a secure page (https, or localhost), and this one is not",
    };
  }
  let a: Adapter | null;
  try {
    a = await g.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    a = null;
    return { available: false, software: false, name: "", problem: `no adapter: ${(e as Error).message}` };
  }
  if (!a)
    return { available: false, software: false, name: "", problem: "the browser gave no WebGPU adapter" };
  return {
    available: true,
    software: isSoftwareAdapter(a),
    name: nameOf(a),
    maxBindingBytes: Math.min(a.limits.maxStorageBufferBindingSize, a.limits.maxBufferSize),
  };
}

/** The device for a request ("cpu" is wasm here), with the reason, as Node reports its choice. */
export function chooseBrowserDevice(request: DeviceRequest, adapter: AdapterReport): DeviceChoice {
  if (request === "cpu") return { device: "cpu", reason: "asked for" };
  if (request === "webgpu") {
    if (!adapter.available) {
      throw new StylegramError(
        message`no WebGPU adapter is usable here (${adapter.problem ?? "none"}): ${opt("device", "wasm")} runs on any browser`,
      );
    }
    return { device: "webgpu", reason: `asked for (${adapter.name})` };
  }
  if (!adapter.available) return { device: "cpu", reason: adapter.problem ?? "no WebGPU adapter" };
  if (adapter.software)
    return { device: "cpu", reason: `the only WebGPU adapter is a software one (${adapter.name})` };
  return { device: "webgpu", reason: `a GPU adapter answered (${adapter.name})` };
}
