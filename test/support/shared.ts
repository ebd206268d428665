import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** ../shared beside the project root: real weights, golden values and images. */
export const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "shared");
export const WEIGHTS_DIR = path.join(SHARED, "models", "vgg19");
export const GOLDEN_DIR = path.join(SHARED, "golden");
export const IMAGES_DIR = path.join(SHARED, "images");

/**
 * Options for a test that needs ../shared: skipped on a developer's machine
 * without it, but under CI=true its absence is a failure, never a skip.
 */
export function needsShared(): { skip?: string } {
  if (fs.existsSync(path.join(WEIGHTS_DIR, "manifest.json"))) return {};
  if (process.env.CI === "true") {
    throw new Error(`CI=true but the real weights are missing: ${WEIGHTS_DIR}/manifest.json`);
  }
  return { skip: `no ${WEIGHTS_DIR}` };
}
