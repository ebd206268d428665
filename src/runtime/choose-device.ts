import fs from "node:fs";
import path from "node:path";
import { type DeviceChoice, type DeviceRequest, noAdapterError } from "./device.js";

/** Vulkan drivers that run on the CPU: faster than nothing, slower than onnxruntime's own CPU kernels. */
const SOFTWARE_DRIVERS = /swiftshader|lvp|lavapipe|llvmpipe/i;

/** The Vulkan drivers (ICD manifests) the Vulkan loader would use, as the loader finds them. */
export function vulkanDrivers(env: NodeJS.ProcessEnv = process.env): string[] {
  const listed = env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES;
  if (listed) return listed.split(path.delimiter).filter((f) => f !== "");
  const dirs = ["/etc/vulkan/icd.d", "/usr/share/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"];
  return dirs.flatMap((d) =>
    fs.existsSync(d)
      ? fs
          .readdirSync(d)
          .filter((f) => f.endsWith(".json"))
          .map((f) => path.join(d, f))
      : [],
  );
}

/** Whether a Vulkan ICD manifest names a software driver (by its library's name). */
export function isSoftwareDriver(manifest: string): boolean {
  try {
    const json = JSON.parse(fs.readFileSync(manifest, "utf8")) as { ICD?: { library_path?: string } };
    return SOFTWARE_DRIVERS.test(json.ICD?.library_path ?? manifest);
  } catch {
    return SOFTWARE_DRIVERS.test(manifest);
  }
}

/**
 * Resolves `auto`. On Linux the WebGPU provider reaches the GPU through Vulkan,
 * so a machine whose only Vulkan drivers are software ones (SwiftShader,
 * lavapipe) has no GPU worth taking: the CPU is faster. Elsewhere (D3D12,
 * Metal) `probe` tries to open the WebGPU provider.
 */
export async function chooseDevice(
  request: DeviceRequest,
  probe: () => Promise<string | undefined>,
): Promise<DeviceChoice> {
  if (request === "cpu") return { device: "cpu", reason: "asked for" };
  if (request === "webgpu") {
    // Checked before any work, so that a machine without a GPU hears it at once, not after the set-up.
    const problem = await probe();
    if (problem !== undefined) throw noAdapterError(new Error(problem));
    return { device: "webgpu", reason: "asked for" };
  }
  if (process.platform === "linux") {
    const drivers = vulkanDrivers();
    const hardware = drivers.filter((d) => !isSoftwareDriver(d));
    if (hardware.length === 0) {
      return {
        device: "cpu",
        reason:
          drivers.length === 0
            ? "no Vulkan GPU driver found"
            : `only software Vulkan drivers: ${drivers.map((d) => path.basename(d)).join(", ")}`,
      };
    }
  }
  const problem = await probe();
  return problem === undefined
    ? { device: "webgpu", reason: "a GPU adapter answered" }
    : { device: "cpu", reason: `no usable GPU: ${problem}` };
}
