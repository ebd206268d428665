import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { FastifyInstance, FastifyReply } from "fastify";
import sharp from "sharp";
import { type OptionStyle, StylegramError, UsageError } from "../errors.js";
import type { VggWeights } from "../network/weights.js";
import { equivalentCommand } from "../options/command-line.js";
import { checkStylize } from "../stylize/stylize.js";
import { describeValue } from "../validate.js";
import type { EventStreams } from "./events.js";
import { HttpError } from "./http-error.js";
import { Job, type JobQueue } from "./jobs.js";
import { JOB_OPTIONS, type JobOptions, parseJobOptions } from "./options.js";
import { readJobUpload, type UploadLimits, withUploadNames } from "./uploads.js";

export interface RouteContext {
  /** The server's private folder; each job gets a folder in it named by its id. */
  dir: string;
  jobs: Map<string, Job>;
  queue: JobQueue;
  streams: EventStreams;
  weights: VggWeights;
  /** The weights path to show in the equivalent command, when one was given explicitly. */
  weightsPath: string | undefined;
  uploads: UploadLimits;
  expiryMs: number;
  rateLimit: { max: number; windowMs: number };
}

const FORMATS = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" } as const;
type Format = keyof typeof FORMATS;

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
  const { jobs, queue } = ctx;

  const view = (job: Job) => ({
    id: job.id,
    state: job.state,
    position: queue.position(job) ?? null,
    iteration: job.iteration,
    iterations: job.spec.iterations,
    loss: job.loss ?? null,
    error: job.error ?? null,
    elapsed: job.elapsed,
    eta: Number.isFinite(job.eta) && !job.finished ? job.eta : null,
    stage: job.stage?.type === "stage" ? job.stage.stage : null,
    preview: job.previewUrl(),
    losses: job.losses,
    content: job.spec.content.name,
    styles: job.spec.styles.map((s) => s.name),
    options: job.spec.options,
    command: job.spec.command,
    result: job.result
      ? {
          width: job.result.width,
          height: job.result.height,
          ...Object.fromEntries(
            Object.keys(FORMATS).map((f) => [f, `/api/jobs/${job.id}/result?format=${f}`]),
          ),
        }
      : null,
    expiresAt: job.finishedAt === undefined ? null : new Date(job.finishedAt + ctx.expiryMs).toISOString(),
  });

  const find = (id: string): Job => {
    const job = jobs.get(id);
    if (!job) {
      throw new HttpError(
        404,
        `no job ${id.slice(0, 40)}: its results expire ${Math.round(ctx.expiryMs / 60_000)} minutes after it ends and are gone when the server stops`,
      );
    }
    return job;
  };

  app.get("/api/options", async () => ({ schema: JOB_OPTIONS, limits: ctx.uploads }));

  app.post(
    "/api/jobs",
    { config: { rateLimit: { max: ctx.rateLimit.max, timeWindow: ctx.rateLimit.windowMs } } },
    async (request, reply) => {
      // A full line refuses at once, before the uploads are read and stored.
      queue.assertRoom();
      const id = randomUUID();
      const dir = path.join(ctx.dir, id);
      fs.mkdirSync(dir, { mode: 0o700 });
      try {
        const upload = await readJobUpload(request, dir, ctx.uploads);
        const options: JobOptions = parseJobOptions(upload.options);
        let iterations: number;
        try {
          const { steps } = await checkStylize(
            {
              ...options,
              content: upload.content.file,
              styles: upload.styles.map((s) => s.file),
              weights: ctx.weights,
            },
            // The advice in an error names only sizes and style scales that this API accepts.
            {
              size: JOB_OPTIONS.properties.size.maximum,
              styleScale: JOB_OPTIONS.properties.styleScale.maximum,
            },
          );
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
        const command = equivalentCommand({
          content: upload.content.name,
          styles: upload.styles.map((s) => s.name),
          output: `${stem}-stylegram.png`,
          options,
          ...(ctx.weightsPath === undefined ? {} : { weights: ctx.weightsPath }),
        });
        const job = new Job(id, dir, { ...upload, options, command, iterations });
        queue.add(job);
        jobs.set(id, job);
        reply.code(202).header("location", `/api/jobs/${id}`);
        return { id, state: job.state, position: queue.position(job) ?? null, url: `/api/jobs/${id}` };
      } catch (e) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    },
  );

  app.get<{ Params: { id: string } }>("/api/jobs/:id", async (request) => view(find(request.params.id)));

  app.get<{ Params: { id: string } }>("/api/jobs/:id/events", (request, reply) => {
    const job = find(request.params.id);
    ctx.streams.attach(request, reply, job, () => view(job));
  });

  app.get<{ Params: { id: string } }>("/api/jobs/:id/preview", async (request, reply) => {
    const job = find(request.params.id);
    if (!job.preview)
      throw new HttpError(404, "no preview yet: the first frame comes with the first iterations");
    reply.header("cache-control", "no-store").type("image/jpeg");
    return job.preview.bytes;
  });

  app.get<{ Params: { id: string }; Querystring: { format?: string } }>(
    "/api/jobs/:id/result",
    async (request, reply: FastifyReply) => {
      const job = find(request.params.id);
      const format = (request.query.format ?? "png") as Format;
      if (!(format in FORMATS)) {
        throw new HttpError(
          400,
          `format must be png, jpeg or webp, got "${String(format).slice(0, 20)}"`,
          "format",
        );
      }
      if (!job.result) {
        throw new HttpError(
          409,
          job.state === "failed" || job.state === "cancelled"
            ? `job ${job.id} ${job.state === "failed" ? "failed" : "was cancelled"}: it has no result`
            : `job ${job.id} is ${job.state}: its result comes when it is done`,
        );
      }
      const png = fs.readFileSync(job.result.file);
      const bytes =
        format === "png"
          ? png
          : format === "jpeg"
            ? await sharp(png).jpeg({ quality: 92, chromaSubsampling: "4:4:4" }).toBuffer()
            : await sharp(png).webp({ quality: 92 }).toBuffer();
      reply
        .type(FORMATS[format])
        .header(
          "content-disposition",
          `attachment; filename="${downloadName(job.spec.content.name, format)}"`,
        );
      return bytes;
    },
  );

  app.delete<{ Params: { id: string } }>("/api/jobs/:id", async (request) => {
    const job = find(request.params.id);
    if (!job.finished) {
      queue.cancel(job);
      return { id: job.id, state: job.state };
    }
    // A finished job: its result is removed now rather than at its expiry.
    jobs.delete(job.id);
    fs.rmSync(job.dir, { recursive: true, force: true });
    return { id: job.id, state: job.state, removed: true };
  });
}
