import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import multipart from "@fastify/multipart";
import rateLimit from "@fastify/rate-limit";
import fastifyStatic from "@fastify/static";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import type { VggWeights } from "../network/weights.js";
import { defaultThreads } from "../runtime/session.js";
import { Admission, type AdmissionLimits, DEFAULT_ADMISSION } from "./admission.js";
import { TokenCheck } from "./auth.js";
import { registerBrowserFiles } from "./browser-routes.js";
import { EmbeddedLine } from "./embedded-line.js";
import { EventStreams } from "./events.js";
import { requestGuard } from "./guard.js";
import { hostAllowList } from "./hosts.js";
import { HttpError } from "./http-error.js";
import type { Job, JobQueue } from "./jobs.js";
import type { JobLine } from "./line.js";
import { logLines } from "./log.js";
import { JobMetrics } from "./metrics.js";
import { makePrivateDir, removeStaleDirs } from "./private-dir.js";
import { registerRoutes } from "./routes.js";
import { DEFAULT_UPLOAD_LIMITS, type UploadLimits } from "./uploads.js";
import { WEB_DIR } from "./web-dir.js";

export interface ServerOptions {
  weights: VggWeights;
  /** Jobs that compute at once (default 1). */
  concurrency?: number;
  /** Jobs that may wait for a slot (default 16); one more gets 429. */
  maxWaiting?: number;
  /** How long a finished job's result stays downloadable (default 1 hour). */
  expiryMs?: number;
  /** Jobs taken from one client per window (default 30 a minute); refused requests do not count. */
  rateLimit?: { max: number; windowMs: number };
  /** Jobs one client may have waiting or running (default 4). */
  jobsPerClient?: number;
  /** Uploads received at once, in all and from one client (default 8 and 2). */
  uploadsInFlight?: { total: number; perClient: number };
  /** The longest a request may take to arrive, body included (default 2 minutes); then 408 and closed. */
  requestTimeoutMs?: number;
  uploads?: Partial<UploadLimits>;
  /** Least time between two preview frames of a job (default 400 ms). */
  frameMs?: number;
  /** Compute threads of all jobs together (default: the cores). */
  threads?: number;
  /**
   * Host names requests may use besides localhost, the loopback addresses and
   * this machine's own addresses (--allowed-host); any other gets 403, so that
   * a web site cannot reach the server through DNS rebinding.
   */
  allowedHosts?: string[];
  /** Where the private folder is made (default: the system's temporary folder). */
  tmpRoot?: string;
  /** Where errors and failed jobs are reported, one readable line each (default: nowhere). */
  log?: { write(line: string): unknown };
  /**
   * Tokens, one of which every request to the API and /metrics must carry (Authorization: Bearer,
   * or the cookie the page gets from POST /api/login); default: none needed.
   */
  tokens?: readonly string[];
  /** The tokens hold only for requests from other machines (serve's own token, when none was given). */
  tokensFromOtherMachines?: boolean;
}

/** What a line made elsewhere (LineFactory) is given: the server's limits and its metrics and log. */
export interface LineContext {
  maxWaiting: number;
  admission: AdmissionLimits;
  expiryMs: number;
  metrics: JobMetrics;
  logError: (e: unknown, message: string) => void;
}
export type LineFactory = (ctx: LineContext) => Promise<JobLine>;

/** A server, whichever line runs its jobs. */
export interface ServerBase {
  app: FastifyInstance;
  /** The private folder (mode 0700) of uploads (and, here, results); removed when the server closes. */
  dir: string;
  /** Private folders of servers that were killed, found in the same place and removed at the start. */
  removedStale: string[];
  line: JobLine;
}

/** A server whose jobs run in this process's own line. */
export interface StylegramServer extends ServerBase {
  queue: JobQueue;
  jobs: Map<string, Job>;
}

/** Friendlier words for the multipart parser's refusals, which name no field. */
function multipartProblem(e: FastifyError, uploads: UploadLimits): HttpError | undefined {
  const mb = `${Math.round(uploads.fileBytes / 2 ** 20)} MB`;
  switch (e.code) {
    case "FST_REQ_FILE_TOO_LARGE": {
      const field = (e as { part?: { fieldname?: string } }).part?.fieldname;
      return new HttpError(
        413,
        `${field ?? "a file"} is over the ${mb} limit of one file: send a smaller image`,
        field,
      );
    }
    case "FST_FILES_LIMIT":
      return new HttpError(
        413,
        `too many files: one content file and at most ${uploads.styles} style files`,
        "style",
      );
    case "FST_PARTS_LIMIT":
    case "FST_FIELDS_LIMIT":
      return new HttpError(413, "too many fields: send content, style (one or more) and options only");
    case "FST_INVALID_MULTIPART_CONTENT_TYPE":
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new HttpError(
        415,
        "POST /api/jobs takes multipart/form-data: a file field content, one or more file fields style, and an optional field options (JSON)",
      );
    case "FST_MP_PREMATURE_CLOSE":
    case "ECONNRESET": // the client, or a server that is closing, ended the connection mid-upload
      return new HttpError(400, "the upload was cut off before it ended: send it again");
    case "FST_PROTO_VIOLATION":
      return new HttpError(400, "a field name is not allowed: the fields are content, style and options");
    default:
      return undefined;
  }
}

/**
 * The web app's server: the page, the job API over the library's stylize(),
 * a queue with `concurrency` slots, and a private folder for uploads and
 * results that is removed when the server closes (or the process exits).
 */
export async function buildServer(options: ServerOptions): Promise<StylegramServer> {
  return (await build(options)) as StylegramServer;
}

/** The same server, its jobs on a line made by `line` (a Redis queue's, src/queue) instead of its own. */
export function buildQueueServer(options: ServerOptions, line: LineFactory): Promise<ServerBase> {
  return build(options, line);
}

async function build(options: ServerOptions, makeLine?: LineFactory): Promise<ServerBase | StylegramServer> {
  const concurrency = options.concurrency ?? 1;
  const uploads = { ...DEFAULT_UPLOAD_LIMITS, ...options.uploads };
  const expiryMs = options.expiryMs ?? 60 * 60_000;
  const threads = Math.max(1, Math.floor((options.threads ?? defaultThreads()) / concurrency));
  const frameMs = options.frameMs ?? 400;

  const requestTimeout = options.requestTimeoutMs ?? 120_000;

  const tmpRoot = options.tmpRoot ?? os.tmpdir();
  const removedStale = removeStaleDirs(tmpRoot);
  const { dir, stop: stopMarking } = makePrivateDir(tmpRoot);
  // A last resort for an exit that skips close (a second Ctrl-C): nothing uploaded outlives the process.
  const removeDir = () => fs.rmSync(dir, { recursive: true, force: true });
  process.once("exit", removeDir);

  const app = Fastify({
    logger: options.log ? { level: "warn", stream: logLines(options.log) } : false,
    // Uploads are streamed by the multipart parser with their own limits; other bodies are tiny.
    bodyLimit: 64 * 1024,
    // A request (an upload) must have arrived in this time, however slowly it trickles. Node checks
    // every connectionsCheckingInterval, so that is a fraction of it, and it checks nothing while
    // headersTimeout (default 60 s) is longer than requestTimeout.
    requestTimeout,
    http: {
      connectionsCheckingInterval: Math.max(100, Math.min(5000, Math.floor(requestTimeout / 4))),
      headersTimeout: Math.min(60_000, requestTimeout),
    },
    // Closing ends every connection, uploads in the middle included, so that a stop takes seconds.
    forceCloseConnections: true,
  });
  const streams = new EventStreams();
  const admission = new Admission({
    uploads: options.uploadsInFlight?.total ?? DEFAULT_ADMISSION.uploads,
    uploadsPerClient: options.uploadsInFlight?.perClient ?? DEFAULT_ADMISSION.uploadsPerClient,
    jobsPerClient: options.jobsPerClient ?? DEFAULT_ADMISSION.jobsPerClient,
    rate: options.rateLimit ?? DEFAULT_ADMISSION.rate,
  });
  const metrics = new JobMetrics();
  const maxWaiting = options.maxWaiting ?? 16;
  const logError = (e: unknown, message: string) => app.log.error({ err: e }, message);
  let line: JobLine;
  try {
    line = makeLine
      ? await makeLine({ maxWaiting, admission: admission.limits, expiryMs, metrics, logError })
      : new EmbeddedLine({
          weights: options.weights,
          concurrency,
          maxWaiting,
          threads,
          frameMs,
          expiryMs,
          admission,
          metrics,
          logError,
          logFailure: (message) => app.log.warn(message),
        });
  } catch (e) {
    stopMarking();
    removeDir();
    process.off("exit", removeDir);
    throw e;
  }
  const tokens =
    options.tokens && options.tokens.length > 0
      ? new TokenCheck(options.tokens, options.tokensFromOtherMachines)
      : undefined;

  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    // A refusal before the body has all arrived ends the connection: node would otherwise read the rest.
    if (!request.raw.complete) reply.header("connection", "close");
    const known = error instanceof HttpError ? error : multipartProblem(error as FastifyError, uploads);
    if (known) {
      if (known.retryAfter !== undefined) reply.header("retry-after", String(known.retryAfter));
      return reply
        .code(known.statusCode)
        .send({ error: known.message, ...(known.field ? { field: known.field } : {}) });
    }
    const status = (error as FastifyError).statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.code(status).send({ error: error.message });
    request.log.error({ err: error }, `${request.method} ${request.url.slice(0, 100)}: ${error.message}`);
    return reply
      .code(500)
      .send({ error: `internal error: ${error.message} (a bug: the server's log has the details)` });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: `nothing at ${request.method} ${request.url.slice(0, 100)}` }),
  );

  app.addHook("onRequest", requestGuard(hostAllowList(options.allowedHosts)));
  // After the Host check, before anything else: a request without a valid token reads and counts nothing.
  if (tokens) app.addHook("onRequest", tokens.hook());
  app.addHook("onSend", async (_request, reply, payload) => {
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    // Cross-origin isolated, so that onnxruntime-web's wasm may use threads (SharedArrayBuffer).
    reply.header("cross-origin-opener-policy", "same-origin");
    reply.header("cross-origin-embedder-policy", "require-corp");
    if (String(reply.getHeader("content-type") ?? "").startsWith("text/html")) {
      reply.header(
        "content-security-policy",
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
      );
    }
    return payload;
  });

  // Job requests, refused ones included, at four times the rate of jobs taken: a flood's bound.
  const requestRate = {
    max: 4 * admission.limits.rate.max,
    windowMs: admission.limits.rate.windowMs,
  };
  await app.register(rateLimit, {
    global: false,
    // On a queue the count is the fleet's; while Redis is away the line's own 503 is what a request hears.
    ...(line.rateLimitRedis
      ? { redis: line.rateLimitRedis, nameSpace: "stylegram-requests-", skipOnError: true }
      : {}),
    errorResponseBuilder: (_request, context) =>
      new HttpError(
        context.statusCode,
        `too many requests from your address: at most ${context.max} in ${Math.round(requestRate.windowMs / 1000)} s. Try again in ${context.after}`,
      ),
  });
  await app.register(multipart, { limits: { fileSize: uploads.fileBytes } });
  if (fs.existsSync(path.join(WEB_DIR, "index.html"))) {
    await app.register(fastifyStatic, { root: WEB_DIR, wildcard: false });
  } else {
    app.get("/", async (_request, reply) =>
      reply
        .code(503)
        .type("text/plain")
        .send(`The page is not built (no ${WEB_DIR}index.html): run npm run build in the clone.`),
    );
  }

  registerBrowserFiles(app, options.weights);

  registerRoutes(app, {
    dir,
    line,
    streams,
    weights: options.weights,
    uploads,
    admission,
    requestRate,
    tokens,
    metrics,
    otherMetrics: async () => (line.workerMetrics ? await line.workerMetrics() : []),
  });

  const sweeper = setInterval(() => admission.sweep(), 60_000);
  sweeper.unref();

  app.addHook("preClose", async () => {
    streams.closeAll();
  });
  app.addHook("onClose", async () => {
    clearInterval(sweeper);
    stopMarking();
    await line.close();
    removeDir();
    process.off("exit", removeDir);
  });
  return line instanceof EmbeddedLine
    ? { app, dir, removedStale, line, queue: line.queue, jobs: line.jobs }
    : { app, dir, removedStale, line };
}
