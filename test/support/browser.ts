import fs from "node:fs";
import { type Browser, chromium } from "playwright-core";

/** Debian's chromium: the browser the tests drive (never one downloaded by the test tool). */
export const CHROMIUM = process.env.STYLEGRAM_CHROMIUM ?? "/usr/bin/chromium";

/**
 * Options for a test that needs chromium: skipped on a developer's machine
 * without it, a failure under CI=true (where .ci/run installs it).
 */
export function needsChromium(): { skip?: string } {
  if (fs.existsSync(CHROMIUM)) return {};
  if (process.env.CI === "true") {
    throw new Error(`CI=true but ${CHROMIUM} is missing: apt-get install -y chromium (as .ci/run does)`);
  }
  return { skip: `no ${CHROMIUM}: apt-get install -y chromium to run the browser tests` };
}

/**
 * Debian's chromium, headless. With `webgpu`, WebGPU is on: without a GPU (containers, CI) its adapter
 * is SwiftShader's, Vulkan on the CPU, which the browser module's tests run on.
 */
export function launchChromium(options: { webgpu?: boolean } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // No GPU in containers and CI; the page needs none.
    args: options.webgpu
      ? ["--enable-unsafe-webgpu", "--disable-dev-shm-usage"]
      : ["--disable-gpu", "--disable-dev-shm-usage"],
  });
}
