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

/**
 * Skips a test that needs something this machine lacks (root, a tmpfs); under CI=true the test
 * fails instead, so that a CI run never passes by skipping it.
 */
export function skipUnlessCi(t: { skip: (message?: string) => void }, reason: string): void {
  if (process.env.CI === "true") throw new Error(`CI=true, but this test cannot run: ${reason}`);
  t.skip(reason);
}
