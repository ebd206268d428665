import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * SwiftShader's Vulkan ICD manifest, where scripts/swiftshader.sh (run by .ci/run)
 * or Debian's chromium-common package put it. With VK_ICD_FILENAMES pointing at it,
 * onnxruntime's WebGPU provider runs on this machine's CPU: slowly, but exactly.
 */
export function swiftShaderIcd(): string | undefined {
  const candidates = [
    process.env.STYLEGRAM_VK_ICD,
    "/usr/lib/chromium/vk_swiftshader_icd.json",
    path.join(ROOT, ".cache", "swiftshader", "usr", "lib", "chromium", "vk_swiftshader_icd.json"),
  ];
  return candidates.find((c): c is string => typeof c === "string" && c !== "" && fs.existsSync(c));
}

/**
 * Points this process's Vulkan loader at SwiftShader (before any WebGPU session
 * exists). Options for a test that needs it: skipped on a developer's machine
 * without it, a failure under CI=true.
 */
export function needsSwiftShader(): { skip?: string } {
  const icd = swiftShaderIcd();
  if (icd) {
    process.env.VK_ICD_FILENAMES = icd;
    process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
    return {};
  }
  if (process.env.CI === "true") {
    throw new Error("CI=true but SwiftShader is missing: run scripts/swiftshader.sh (as .ci/run does)");
  }
  return { skip: "no SwiftShader: run scripts/swiftshader.sh once to test the WebGPU path" };
}
