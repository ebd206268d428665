import { randomUUID } from "node:crypto";
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
import type { EventStreams } from "./events.js";
import { clientKey } from "./hosts.js";
import { HttpError } from "./http-error.js";
import type { JobView } from "./job-view.js";
import { Job, type JobQueue } from "./jobs.js";
import { API_LIMITS, JOB_OPTIONS, type JobOptions, parseJobOptions } from "./options.js";
import { readJobUpload, tooManyBytes, type UploadLimits, withUploadNames } from "./uploads.js";

export interface RouteContext {
  /** The server's private folder; each job gets a folder in it named by its id. */
  dir: string;
  jobs: Map<string, Job>;
  queue: JobQueue;
  streams: EventStreams;
  weights: VggWeights;
  uploads: UploadLimits;
  admission: Admission;
  expiryMs: number;
  /** Job requests (refused ones too) one client may send per window, a flood's bound. */
  requestRate: { max: number; windowMs: number };
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
  const { jobs, queue } = ctx;

  const view = (job: Job): JobView => ({
    id: job.id,
    state: job.state,
    position: queue.position(job) ?? null,
    iteration: job.iteration,
    iterations: job.spec.iterations,
    loss: job.loss ?? null,
    error: job.error ?? null,
    elapsed: job.elapsed,
    eta: job.state === "done" ? 0 : Number.isFinite(job.eta) && !job.finished ? job.eta : null,
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
          ...(Object.fromEntries(
            Object.keys(FORMATS).map((f) => [f, `/api/jobs/${job.id}/result?format=${f}`]),
          ) as Record<Format, string>),
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

  /** Jobs of one client that hold a place in the line (waiting or running). */
  const active = (client: string) => {
    let n = 0;
    for (const j of jobs.values()) if (j.client === client && !j.finished) n++;
    return n;
  };

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
      queue.assertRoom();
      ctx.admission.assertMayQueue(client, active(client));
      if (Number(request.headers["content-length"]) > ctx.uploads.requestBytes + FORM_OVERHEAD)
        throw tooManyBytes(ctx.uploads);
      const release = ctx.admission.startUpload(client);
      const id = randomUUID();
      const dir = path.join(ctx.dir, id);
      fs.mkdirSync(dir, { mode: 0o700 });
      try {
        const upload = await readJobUpload(request, dir, ctx.uploads);
        release();
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
            API_LIMITS,
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
        // Without --weights: the server's paths are its own, and the reader's stylegram finds its own weights.
        const command = equivalentCommand({
          content: upload.content.name,
          styles: upload.styles.map((s) => s.name),
          output: `${stem}-stylegram.png`,
          options: options as CommandInput["options"],
        });
        // Checked again: the line or the client's share may have filled while this upload arrived.
        ctx.admission.assertMayQueue(client, active(client));
        const job = new Job(id, dir, { ...upload, options, command, iterations }, client);
        queue.add(job);
        jobs.set(id, job);
        ctx.admission.accepted(client);
        reply.code(202).header("location", `/api/jobs/${id}`);
        return { id, state: job.state, position: queue.position(job) ?? null, url: `/api/jobs/${id}` };
      } catch (e) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
      } finally {
        release();
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
    reply.header("cache-control", "no-store").header("cross-origin-resource-policy", "same-origin");
    return reply.type("image/jpeg").send(job.preview.bytes);
  });

  app.get<{ Params: { id: string }; Querystring: { format?: string } }>(
    "/api/jobs/:id/result",
    async (request, reply: FastifyReply) => {
      const job = find(request.params.id);
      const format = String(request.query.format ?? "png");
      if (!isFormat(format)) {
        throw new HttpError(400, `format must be png, jpeg or webp, got "${format.slice(0, 20)}"`, "format");
      }
      if (!job.result) {
        throw new HttpError(
          409,
          job.state === "failed"
            ? `job ${job.id} failed: it has no result`
            : job.state === "cancelled"
              ? `job ${job.id} was cancelled before its first iteration: it has no result`
              : `job ${job.id} is ${job.state}: its result comes when it is done`,
        );
      }
      let png: Buffer;
      try {
        png = fs.readFileSync(job.result.file);
      } catch {
        // Removed (DELETE) between the look-up and the read.
        throw new HttpError(404, `job ${job.id}'s result was removed`);
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
        .header(
          "content-disposition",
          `attachment; filename="${downloadName(job.spec.content.name, format)}"`,
        );
      return bytes;
    },
  );

  app.delete<{ Params: { id: string } }>("/api/jobs/:id", async (request, reply) => {
    const job = find(request.params.id);
    if (!job.finished) {
      queue.cancel(job);
      // A running job stops at its next step; it ends (cancelled) when its work has stopped.
      if (!job.finished) reply.code(202);
      return { id: job.id, state: job.state };
    }
    // A finished job: its result is removed now rather than at its expiry.
    jobs.delete(job.id);
    fs.rmSync(job.dir, { recursive: true, force: true });
    return { id: job.id, state: job.state, removed: true };
  });
}
