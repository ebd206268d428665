import { message, opt, StylegramError } from "../errors.js";

/** Where the objective runs: onnxruntime's CPU provider, or its WebGPU provider (Vulkan, D3D12, Metal). */
export type Device = "cpu" | "webgpu";
/** `auto` takes a real GPU when there is one, the CPU otherwise. */
export type DeviceRequest = Device | "auto";
export const DEVICE_REQUESTS: readonly DeviceRequest[] = ["cpu", "webgpu", "auto"];

/** The device a run took, and why, for the progress output and the log. */
export interface DeviceChoice {
  device: Device;
  reason: string;
}

/** The message for `--device webgpu` when onnxruntime finds no adapter. */
export function noAdapterError(cause: unknown): StylegramError {
  const how =
    process.platform === "linux"
      ? "install your GPU's Vulkan driver (check with `vulkaninfo --summary`, from Debian's vulkan-tools) and the Vulkan loader (libvulkan1)"
      : process.platform === "win32"
        ? "update your GPU driver (WebGPU runs on Direct3D 12)"
        : "WebGPU runs on Metal on Apple silicon Macs";
  return new StylegramError(
    message`no WebGPU adapter is usable here (${firstLine(cause)}): ${how}. ${opt("device", "cpu")} works on any machine.`,
    { cause },
  );
}

function firstLine(e: unknown): string {
  const m = (e as Error).message ?? String(e);
  const adapter = /Failed to get a WebGPU adapter[^\n]*/.exec(m);
  return (adapter ? "onnxruntime found no adapter" : (m.split("\n")[0] ?? "")).trim();
}
