import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { MODULE_FILE, ORT_FILES, WORKER_FILE } from "../browser/files.js";
import { WEIGHTS_DESCRIPTOR, type WeightsDescriptor } from "../browser/weights.js";
import { encodeSafetensors } from "../network/formats/safetensors.js";
import type { VggWeights } from "../network/weights.js";

/**
 * What a page needs to compute in the browser, for `stylegram serve` and `npm run build:site`: the
 * module and its worker (dist/browser, built by npm run build), onnxruntime-web's wasm build (from
 * its package), and the weights as one safetensors file with a descriptor naming its SHA-256.
 */

/** dist/browser, beside dist/server in a package and two levels below the root from src/server. */
export const BROWSER_DIR = fileURLToPath(new URL("../../dist/browser/", import.meta.url));

/** The weights' file name beside the descriptor. */
export const WEIGHTS_FILE = "stylegram-vgg19.safetensors";

/** Each file the module loads, by the name it is served under, and where it lies on this machine. */
export function browserFiles(): Map<string, string> {
  const require = createRequire(import.meta.url);
  // The package exports no package.json: its dist folder is where its CommonJS build lies.
  const ortDist = path.dirname(require.resolve("onnxruntime-web/webgpu"));
  const files = new Map<string, string>([
    [MODULE_FILE, path.join(BROWSER_DIR, MODULE_FILE)],
    [WORKER_FILE, path.join(BROWSER_DIR, WORKER_FILE)],
  ]);
  for (const f of ORT_FILES) files.set(f, path.join(ortDist, f));
  return files;
}

/** Why the browser module cannot be served here, or undefined when every file is in place. */
export function browserFilesProblem(): string | undefined {
  const missing = [...browserFiles().values()].filter((f) => !fs.existsSync(f));
  if (missing.length === 0) return undefined;
  return `the browser module is not built (missing ${missing.join(", ")}): run npm run build in the clone`;
}

export interface WeightsForBrowser {
  bytes: Uint8Array;
  descriptor: WeightsDescriptor;
}

/** The weights as the browser reads them: safetensors bytes and the descriptor with their digest. */
export function weightsForBrowser(weights: VggWeights): WeightsForBrowser {
  const bytes = encodeSafetensors(weights);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  return { bytes, descriptor: { format: "safetensors", url: WEIGHTS_FILE, sha256, bytes: bytes.length } };
}

export { WEIGHTS_DESCRIPTOR };
