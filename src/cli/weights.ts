import { resolveWeightsFor } from "../models/resolve.js";
import type { VggWeights } from "../network/weights.js";
import { downloadProgress } from "./download-progress.js";

/**
 * The weights a command asks for (--weights, else $STYLEGRAM_WEIGHTS, else the cache), fetched first
 * when --fetch (or STYLEGRAM_AUTO_FETCH=1) says so, with a progress line; `signal` stops a download.
 */
export async function weightsFor(
  path: string | undefined,
  fetch: boolean,
  signal?: AbortSignal,
): Promise<VggWeights> {
  const progress = downloadProgress(process.stderr, "vgg19");
  return resolveWeightsFor({
    ...(path === undefined ? {} : { path }),
    ...(fetch ? { fetch: true } : {}),
    onFetchProgress: progress.update,
    ...(signal ? { signal } : {}),
  });
}
