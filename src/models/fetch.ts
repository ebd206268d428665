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
 * failure (bad URL, HTTP error, stall, truncation, wrong checksum, abort) the
 * partial file is removed, so the cache holds either the verified file or
 * nothing, and a retry starts clean.
 */
export async function fetchFile(options: FetchOptions): Promise<void> {
  const { url, md5, dest } = options;
  checkDownloadUrl(url);
  if (options.signal?.aborted) throw new StylegramError(`download of ${url} interrupted before it started`);
  const stallMs = options.stallTimeoutMs ?? 30_000;
  const part = `${dest}.part`;
  try {
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.rmSync(part, { force: true }); // a leftover of an interrupted run
  } catch (e) {
    throw fileError(part, e);
  }
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  // A second Ctrl-C exits at once (process.exit), skipping the cleanup below: the partial file goes then too.
  const removePartOnExit = () => {
    try {
      fs.rmSync(part, { force: true });
    } catch {
      // Exiting anyway; the next run removes it.
    }
  };
  process.on("exit", removePartOnExit);
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
    try {
      out = await fs.promises.open(part, "w");
    } catch (e) {
      throw fileError(part, e);
    }
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
    process.off("exit", removePartOnExit);
    // Frees the connection of a response whose body was not read (an HTTP error).
    controller.abort();
  }

  function describe(e: unknown): StylegramError {
    if (stalled) return new StylegramError(`download of ${url} stalled: no data for ${stallMs / 1000} s`);
    if (options.signal?.aborted)
      return new StylegramError(`download of ${url} interrupted; nothing was kept`);
    return networkError(url, e);
  }
}

/** What node's fetch reports (a TypeError "fetch failed" with the real error as its cause), in words. */
function networkError(url: string, e: unknown): StylegramError {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  const { hostname, host, port } = new URL(url);
  if (cause?.message === "bad port") {
    // fetch refuses ports of other protocols (1, 22, 25, 6000, ...) before connecting.
    return new StylegramError(
      `cannot download ${url}: port ${port} is reserved for another protocol and fetch will not use it`,
      { exitCode: 2, cause: e },
    );
  }
  const why = code === undefined ? (cause?.message ?? (e as Error).message) : explain(code, hostname, host);
  return new StylegramError(`download of ${url} failed: ${why}`, { cause: e });
}

/** A network error code, kept (it is what one searches for) and said in words where it is a common one. */
function explain(code: string, hostname: string, host: string): string {
  switch (code) {
    case "ECONNREFUSED":
      return `ECONNREFUSED, nothing is listening at ${host}`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `${code}, no host named ${hostname} was found`;
    case "ECONNRESET":
      return "ECONNRESET, the server closed the connection";
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return `${code}, ${host} did not answer`;
    default:
      return code;
  }
}

/** A cache folder that cannot be written (permissions, a full disk), named. */
function fileError(file: string, e: unknown): StylegramError {
  const code = (e as { code?: string }).code;
  return new StylegramError(`cannot write ${file}: ${code ?? (e as Error).message}`, { cause: e });
}

/**
 * A download address must be a full http(s) URL: checked before anything is
 * printed or created, as fetch would fail on it with node's raw TypeError.
 */
export function checkDownloadUrl(url: string): void {
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
