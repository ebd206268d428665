import fs from "node:fs";
import { message, opt, StylegramError } from "../errors.js";
import { loadKerasH5 } from "../network/formats/keras-h5.js";
import { loadWeightsFrom } from "../network/load.js";
import type { VggWeights } from "../network/weights.js";
import { cacheDir, cachedPath } from "./cache.js";
import { fetchFile } from "./fetch.js";
import { MODELS, type ModelSpec } from "./registry.js";

export interface WeightsRequest {
  /** A weights folder or file; otherwise $STYLEGRAM_WEIGHTS, otherwise the cache. */
  path?: string;
  /** Fetch the weights into the cache when they are not there (default: $STYLEGRAM_AUTO_FETCH=1). */
  fetch?: boolean;
  onFetchProgress?: (received: number, total: number | undefined) => void;
  /** Stops a download (the partial file is removed). */
  signal?: AbortSignal;
}

export function autoFetchEnabled(): boolean {
  const v = process.env.STYLEGRAM_AUTO_FETCH;
  return v === "1" || v === "true" || v === "yes";
}

/** The URL to fetch a model from: $STYLEGRAM_VGG19_URL (a mirror) or its public source. */
export function modelUrl(spec: ModelSpec, override?: string): string {
  const env = process.env[spec.urlEnv];
  return override ?? (env && env.length > 0 ? env : spec.url);
}

/** Fetches a model into the cache (or `dir`), verified against its pinned checksum. */
export async function fetchModel(
  spec: ModelSpec,
  options: {
    url?: string;
    dir?: string;
    onProgress?: WeightsRequest["onFetchProgress"];
    stallTimeoutMs?: number;
    signal?: AbortSignal;
  } = {},
): Promise<string> {
  const dest = cachedPath(spec, options.dir);
  await fetchFile({
    url: modelUrl(spec, options.url),
    md5: spec.md5,
    dest,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.stallTimeoutMs === undefined ? {} : { stallTimeoutMs: options.stallTimeoutMs }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return dest;
}

/**
 * The VGG19 weights for a run. Nothing is downloaded unless the caller asked
 * for it (`fetch`) or the user set STYLEGRAM_AUTO_FETCH=1.
 */
export async function resolveWeightsFor(request: WeightsRequest = {}): Promise<VggWeights> {
  const explicit = request.path ?? (process.env.STYLEGRAM_WEIGHTS || undefined);
  if (explicit) return loadWeightsFrom(explicit);
  const spec = MODELS.vgg19 as ModelSpec;
  const cached = cachedPath(spec);
  if (fs.existsSync(cached)) return loadKerasH5(cached);
  if (request.fetch ?? autoFetchEnabled()) {
    await fetchModel(spec, {
      ...(request.onFetchProgress ? { onProgress: request.onFetchProgress } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
    });
    return loadKerasH5(cached);
  }
  throw new StylegramError(
    message`the VGG19 weights are missing: ${cached} does not exist, and neither ${opt("weights")} nor STYLEGRAM_WEIGHTS is set.\nFetch them once (about 80 MB) with:\n  stylegram models fetch\nor add ${opt("fetch", true)} to this command (STYLEGRAM_AUTO_FETCH=1 fetches whenever they are missing).`,
  );
}

export { cacheDir };

/** Weights given as loaded tensors, a folder or file, or (undefined) from $STYLEGRAM_WEIGHTS or the cache. */
export async function resolveWeights(w: string | VggWeights | undefined): Promise<VggWeights> {
  if (w !== undefined && typeof w !== "string") return w;
  return resolveWeightsFor(w === undefined ? {} : { path: w });
}
