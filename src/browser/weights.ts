import { StoppedError, StylegramError } from "../errors.js";
import { parseSafetensors } from "../network/formats/safetensors.js";
import type { VggWeights } from "../network/weights.js";

/**
 * The weights in a browser: a descriptor (WEIGHTS_DESCRIPTOR, written by `stylegram serve` and
 * `npm run build:site`) names a safetensors file and its SHA-256; the file is downloaded once, checked
 * against the digest, and kept in the Cache API under its digest, so that the 80 MB arrive once per
 * browser whatever page or address asks for them again.
 */

/** The descriptor's file name, beside the module by default. */
export const WEIGHTS_DESCRIPTOR = "stylegram-weights.json";

/** What the descriptor holds. */
export interface WeightsDescriptor {
  format: "safetensors";
  /** The file, relative to the descriptor's own URL (or absolute). */
  url: string;
  /** The file's SHA-256, lower-case hex. */
  sha256: string;
  /** Its length in bytes. */
  bytes: number;
}

/** Where the weights come from: a descriptor's URL, or a file's URL with its digest. */
export type WeightsSource = string | { url: string; sha256: string };

export interface DownloadProgress {
  /** Bytes of the file read so far, and in all (undefined when the server does not say). */
  received: number;
  total: number | undefined;
  /** Whether they come from the browser's cache (then nothing is downloaded). */
  cached: boolean;
}

/** The Cache API's name for stylegram's weights; an entry's key is its digest. */
export const WEIGHTS_CACHE = "stylegram-weights-v1";
const cacheKey = (sha256: string) => `https://stylegram.invalid/weights/${sha256}.safetensors`;

/** The weights parsed, per digest, for as long as the worker lives: a second run reads nothing. */
const loaded = new Map<string, Promise<VggWeights>>();

export async function loadBrowserWeights(
  source: WeightsSource,
  onProgress?: (p: DownloadProgress) => void,
  signal?: AbortSignal,
): Promise<VggWeights> {
  const file = typeof source === "string" ? await readDescriptor(source, signal) : source;
  const sha256 = file.sha256.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256))
    throw new StylegramError(`the weights' sha256 must be 64 hex digits, got ${JSON.stringify(file.sha256)}`);
  let p = loaded.get(sha256);
  if (!p) {
    p = fetchWeights(file.url, sha256, onProgress, signal);
    loaded.set(sha256, p);
    p.catch(() => loaded.delete(sha256));
  }
  return p;
}

async function readDescriptor(url: string, signal?: AbortSignal): Promise<{ url: string; sha256: string }> {
  const response = await get(url, "the weights' descriptor", signal);
  let d: Partial<WeightsDescriptor>;
  try {
    d = (await response.json()) as Partial<WeightsDescriptor>;
  } catch {
    throw new StylegramError(
      `the weights' descriptor ${url} is not JSON: give the URL of a ${WEIGHTS_DESCRIPTOR} (written by stylegram serve or npm run build:site)`,
    );
  }
  if (d.format !== "safetensors" || typeof d.url !== "string" || typeof d.sha256 !== "string") {
    throw new StylegramError(
      `the weights' descriptor ${url} must be {"format": "safetensors", "url": ..., "sha256": ...}`,
    );
  }
  return { url: new URL(d.url, url).href, sha256: d.sha256 };
}

async function get(url: string, what: string, signal?: AbortSignal): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, signal ? { signal } : {});
  } catch (e) {
    if (signal?.aborted) throw new StoppedError("loading the weights");
    throw new StylegramError(`cannot fetch ${what} at ${url}: ${(e as Error).message}`, { cause: e });
  }
  if (!response.ok)
    throw new StylegramError(`cannot fetch ${what} at ${url}: the server answered ${response.status}`);
  return response;
}

async function digest(bytes: Uint8Array): Promise<string> {
  if (!globalThis.crypto?.subtle) {
    throw new StylegramError(
      "the weights' digest cannot be checked: this page is not a secure context (open it over https, or on localhost)",
    );
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The Cache API where the page may use it (a secure context), else nothing: then every load downloads. */
async function openCache(): Promise<Cache | undefined> {
  try {
    return globalThis.caches ? await caches.open(WEIGHTS_CACHE) : undefined;
  } catch {
    return undefined; // storage blocked (a private window's policy): no cache, the run goes on
  }
}

async function fetchWeights(
  url: string,
  sha256: string,
  onProgress?: (p: DownloadProgress) => void,
  signal?: AbortSignal,
): Promise<VggWeights> {
  const cache = await openCache();
  const hit = await cache?.match(cacheKey(sha256));
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    // A cache entry that changed on disk is dropped and downloaded again, never used.
    if ((await digest(bytes)) === sha256) {
      onProgress?.({ received: bytes.length, total: bytes.length, cached: true });
      return parseSafetensors(bytes, url);
    }
    await cache?.delete(cacheKey(sha256));
  }
  const response = await get(url, "the weights", signal);
  const length = Number(response.headers.get("content-length"));
  const total = Number.isFinite(length) && length > 0 ? length : undefined;
  const bytes = await readAll(
    response,
    total,
    (received) => onProgress?.({ received, total, cached: false }),
    signal,
  );
  const got = await digest(bytes);
  if (got !== sha256) {
    throw new StylegramError(
      `the weights at ${url} are not the ones asked for: their SHA-256 is ${got}, not ${sha256} (a download cut short, or another file at that address)`,
    );
  }
  try {
    await cache?.put(
      cacheKey(sha256),
      new Response(bytes as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": "application/octet-stream" },
      }),
    );
  } catch {
    // Over the storage quota: this run has its weights; the next page load downloads them again.
  }
  return parseSafetensors(bytes, url);
}

async function readAll(
  response: Response,
  total: number | undefined,
  onChunk: (received: number) => void,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.length;
      onChunk(received);
    }
  } catch (e) {
    if (signal?.aborted) throw new StoppedError("loading the weights");
    throw new StylegramError(
      `the weights' download broke off after ${received} bytes: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const bytes = total === received ? new Uint8Array(total) : new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}
