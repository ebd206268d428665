import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { StylegramError } from "../errors.js";

export interface FetchOptions {
  url: string;
  md5: string;
  /** Final path of the file; a `.part` file beside it holds the download until it is verified. */
  dest: string;
  /** Abort when no byte arrives for this long (default 30 s). */
  stallTimeoutMs?: number;
  onProgress?: (received: number, total: number | undefined) => void;
  signal?: AbortSignal;
}

/** md5 of a file, streamed. */
export async function md5File(file: string): Promise<string> {
  const hash = createHash("md5");
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * Downloads `url` to `dest`: streamed into `dest.part` with its md5 computed on
 * the way, checked against the pinned checksum, then renamed into place. On any
 * failure (HTTP error, stall, truncation, wrong checksum, abort) the partial
 * file is removed, so the cache holds either the verified file or nothing, and
 * a retry starts clean.
 */
export async function fetchFile(options: FetchOptions): Promise<void> {
  const { url, md5, dest } = options;
  checkUrl(url);
  const stallMs = options.stallTimeoutMs ?? 30_000;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  fs.rmSync(part, { force: true }); // a leftover of an interrupted run
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted)
    throw new StylegramError(`download of ${url} was interrupted before it started`);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      controller.abort();
    }, stallMs);
  };
  // Opened only once the server answers, and closed before it is removed: a file
  // opened asynchronously could otherwise appear after the cleanup and stay behind.
  let out: fs.promises.FileHandle | undefined;
  try {
    arm();
    let response: Response;
    try {
      response = await fetch(url, { signal: controller.signal, redirect: "follow" });
    } catch (e) {
      throw describe(e);
    }
    if (!response.ok || !response.body) {
      throw new StylegramError(
        `download of ${url} failed: HTTP ${response.status} ${response.statusText}`.trim(),
      );
    }
    const lengthHeader = response.headers.get("content-length");
    const total = lengthHeader === null ? undefined : Number(lengthHeader);
    const hash = createHash("md5");
    let received = 0;
    out = await fs.promises.open(part, "w");
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        arm();
        hash.update(chunk);
        received += chunk.length;
        await out.write(chunk);
        options.onProgress?.(received, total);
      }
    } catch (e) {
      throw describe(e);
    }
    await out.close();
    out = undefined;
    if (total !== undefined && received !== total) {
      throw new StylegramError(`download of ${url} was cut short: ${received} of ${total} bytes`);
    }
    const got = hash.digest("hex");
    if (got !== md5) {
      throw new StylegramError(
        `download of ${url} has md5 ${got}, expected ${md5}: corrupt or not the right file`,
      );
    }
    fs.renameSync(part, dest);
  } catch (e) {
    await out?.close().catch(() => undefined);
    fs.rmSync(part, { force: true });
    throw e;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }

  function describe(e: unknown): StylegramError {
    if (stalled) return new StylegramError(`download of ${url} stalled: no data for ${stallMs / 1000} s`);
    if (options.signal?.aborted) {
      return new StylegramError(`download of ${url} was interrupted; the partial file was removed`);
    }
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).message;
    return new StylegramError(`download of ${url} failed: ${why}`, { cause: e });
  }
}

/** A download address must be an http(s) URL: anything else fails with node's raw TypeError otherwise. */
function checkUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StylegramError(
      `"${url}" is not a URL: give the full address of the file, such as https://example.org/vgg19.h5`,
      { exitCode: 2 },
    );
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new StylegramError(`cannot download ${url}: only http:// and https:// addresses are supported`, {
      exitCode: 2,
    });
  }
}
