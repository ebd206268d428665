import fs from "node:fs";
import path from "node:path";
import type { FastifyInstance, FastifyReply } from "fastify";
import sharp from "sharp";
import { type OptionStyle, StylegramError, UsageError } from "../errors.js";
import type { VggWeights } from "../network/weights.js";
import { type CommandInput, equivalentCommand } from "../options/command-line.js";
import { checkStylize } from "../stylize/stylize.js";
import { describeValue } from "../validate.js";
import type { Admission } from "./admission.js";
import type { TokenCheck } from "./auth.js";
import type { EventStreams } from "./events.js";
import { clientKey } from "./hosts.js";
import { HttpError } from "./http-error.js";
import { type JobLine, newJobId } from "./line.js";
import {
  type JobMetrics,
  lineGauges,
  METRICS_CONTENT_TYPE,
  type MetricsJson,
  metricsText,
} from "./metrics.js";
import { API_LIMITS, JOB_OPTIONS, type JobOptions, parseJobOptions } from "./options.js";
import { readJobUpload, tooManyBytes, type UploadLimits, withUploadNames } from "./uploads.js";

export interface RouteContext {
  /** The server's private folder; each job gets a folder in it named by its id. */
  dir: string;
  line: JobLine;
  streams: EventStreams;
  weights: VggWeights;
  uploads: UploadLimits;
  /** The uploads in flight, this process's own (the jobs' shares and rates are the line's). */
  admission: Admission;
  /** Job requests (refused ones too) one client may send per window, a flood's bound. */
  requestRate: { max: number; windowMs: number };
  /** Set when requests need a token (/api/login is then offered to the page). */
  tokens: TokenCheck | undefined;
  metrics: JobMetrics;
  /** The job metrics of other processes (the queue's workers), summed into /metrics. */
  otherMetrics: () => Promise<MetricsJson[]>;
}

const FORMATS = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" } as const;
type Format = keyof typeof FORMATS;
/** An own key of FORMATS: `in` would take "toString" and "__proto__" too. */
const isFormat = (f: string): f is Format => Object.hasOwn(FORMATS, f);

/** Room in a request's length for what is not a file: the part headers, the boundaries, the options. */
const FORM_OVERHEAD = 256 * 1024;

/** The server's way of writing an option in a message: the JSON field, with the value to give it. */
export const SERVER_STYLE: OptionStyle = (r) =>
  r.value === undefined ? `"${r.option}"` : `"${r.option}": ${JSON.stringify(r.value)}`;

/** A name for a download: the photo's name, ASCII only, with the format's extension. */
function downloadName(content: string, format: Format): string {
  const stem =
    content
      .replace(/\.[^.]*$/, "")
      .replace(/[^\w.-]+/g, "_")
      .slice(0, 60) || "picture";
  return `${stem}-stylegram.${format === "jpeg" ? "jpg" : format}`;
}

/** The HTTP API of README's "Web app" section; the page uses exactly this. */
export function registerRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { line } = ctx;

  const missing = (id: string) => new HttpError(404, `no job ${id.slice(0, 40)}: ${line.keeping}`);

  app.get("/api/options", async () => ({ schema: JOB_OPTIONS, limits: ctx.uploads }));

  app.post(
    "/api/jobs",
    {
      config: {
        rateLimit: {
          max: ctx.requestRate.max,
          timeWindow: ctx.requestRate.windowMs,
          keyGenerator: (request) => clientKey(request.ip),
          allowList: (request) => clientKey(request.ip) === "local",
        },
      },
    },
    async (request, reply) => {
      const client = clientKey(request.ip);
      // A full line, a client over its share or a body over the limit is refused at once, before the uploads are read.
      await line.assertMayQueue(client);
      if (Number(request.headers["content-length"]) > ctx.uploads.requestBytes + FORM_OVERHEAD)
        throw tooManyBytes(ctx.uploads);
      const release = ctx.admission.startUpload(client);
      const id = newJobId();
      const dir = path.join(ctx.dir, id);
      fs.mkdirSync(dir, { mode: 0o700 });
      try {
        const upload = await readJobUpload(request, dir, ctx.uploads);
        release();
        const options: JobOptions = parseJobOptions(upload.options);
        let iterations: number;
        let steps: { size: number; iterations: number }[];
        try {
          ({ steps } = await checkStylize(
            {
              ...options,
              content: upload.content.file,
              styles: upload.styles.map((s) => s.file),
              weights: ctx.weights,
            },
            // The advice in an error names only sizes and style scales that this API accepts.
            API_LIMITS,
          ));
          iterations = steps.reduce((n, p) => n + p.iterations, 0);
        } catch (e) {
          if (e instanceof StylegramError) {
            // The library names the files by the server's paths; the user knows them by their names.
            const message = withUploadNames(
              e instanceof UsageError && e.option !== undefined && e.expected !== undefined
                ? `options.${e.option} must be ${e.expected}, got ${describeValue(e.value)}`
                : e.render(SERVER_STYLE),
              [upload.content, ...upload.styles],
            );
            throw new HttpError(400, message, e instanceof UsageError ? e.option : undefined);
          }
          throw e;
        }
        const stem = upload.content.name.replace(/\.[^.]*$/, "") || "picture";
        // Without --weights: the server's paths are its own, and the reader's stylegram finds its own weights.
        const command = equivalentCommand({
          content: upload.content.name,
          styles: upload.styles.map((s) => s.name),
          output: `${stem}-stylegram.png`,
          options: options as CommandInput["options"],
        });
        // Checked again as it is taken: the line or the client's share may have filled while this upload arrived.
        const { state, position } = await line.add({
          id,
          dir,
          spec: { ...upload, options, command, iterations },
          steps,
          client,
        });
        reply.code(202).header("location", `/api/jobs/${id}`);
        return { id, state, position, url: `/api/jobs/${id}` };
      } catch (e) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
      } finally {
        release();
      }
    },
  );

  app.get<{ Params: { id: string } }>("/api/jobs/:id", async (request) => {
    const view = await line.view(request.params.id);
    if (!view) throw missing(request.params.id);
    return view;
  });

  app.get<{ Params: { id: string } }>("/api/jobs/:id/events", async (request, reply) => {
    const feed = await line.follow(request.params.id);
    if (!feed) throw missing(request.params.id);
    ctx.streams.attach(request, reply, feed);
  });

  app.get<{ Params: { id: string } }>("/api/jobs/:id/preview", async (request, reply) => {
    const bytes = await line.preview(request.params.id);
    if (!bytes) {
      if (!(await line.view(request.params.id))) throw missing(request.params.id);
      throw new HttpError(404, "no preview yet: the first frame comes with the first iterations");
    }
    reply.header("cache-control", "no-store").header("cross-origin-resource-policy", "same-origin");
    return reply.type("image/jpeg").send(bytes);
  });

  app.get<{ Params: { id: string }; Querystring: { format?: string } }>(
    "/api/jobs/:id/result",
    async (request, reply: FastifyReply) => {
      const format = String(request.query.format ?? "png");
      const found = await line.result(request.params.id);
      if (!found) throw missing(request.params.id);
      if (!isFormat(format)) {
        throw new HttpError(400, `format must be png, jpeg or webp, got "${format.slice(0, 20)}"`, "format");
      }
      const { view, png } = found;
      if (!png) {
        throw new HttpError(
          409,
          view.state === "failed"
            ? `job ${view.id} failed: it has no result`
            : view.state === "cancelled"
              ? `job ${view.id} was cancelled before its first iteration: it has no result`
              : `job ${view.id} is ${view.state}: its result comes when it is done`,
        );
      }
      const bytes =
        format === "png"
          ? png
          : format === "jpeg"
            ? await sharp(png).jpeg({ quality: 92, chromaSubsampling: "4:4:4" }).toBuffer()
            : await sharp(png).webp({ quality: 92 }).toBuffer();
      reply
        .type(FORMATS[format])
        .header("cross-origin-resource-policy", "same-origin")
        .header("content-disposition", `attachment; filename="${downloadName(view.content, format)}"`);
      return bytes;
    },
  );

  app.delete<{ Params: { id: string } }>("/api/jobs/:id", async (request, reply) => {
    const answer = await line.cancel(request.params.id);
    if (!answer) throw missing(request.params.id);
    // A running job stops at its next step; it ends (cancelled) when its work has stopped.
    if (!answer.removed && !["done", "failed", "cancelled"].includes(answer.state)) reply.code(202);
    return answer;
  });

  if (ctx.tokens) {
    const tokens = ctx.tokens;
    app.post("/api/login", async (request, reply) => tokens.login(request, reply));
  }

  // Prometheus' text format: the line now, and the jobs of every process that ran them.
  app.get("/metrics", async (_request, reply) => {
    const text = await metricsText(lineGauges(await line.counts()), [
      await ctx.metrics.json(),
      ...(await ctx.otherMetrics()),
    ]);
    return reply.type(METRICS_CONTENT_TYPE).send(text);
  });

  // For a load balancer or a supervisor: 200 while jobs can be taken, 503 when the line cannot be reached.
  app.get("/healthz", async (_request, reply) => {
    let health: { ok: boolean; detail: string };
    try {
      health = await line.health();
    } catch (e) {
      health = { ok: false, detail: (e as Error).message };
    }
    reply.header("cache-control", "no-store");
    return reply.code(health.ok ? 200 : 503).send(health);
  });
}
