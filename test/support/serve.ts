import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import sharp from "sharp";
import type { StylegramServer } from "../../src/server/app.js";
import type { JobView } from "../../src/server/job-view.js";
import { OWNER_FILE } from "../../src/server/private-dir.js";
import { IMAGES_DIR } from "./shared.js";

/** The shared photo and painting, shrunk to `edge` pixels: real pictures, tiny work. */
export async function tinyImages(edge = 64): Promise<{ photo: Buffer; painting: Buffer }> {
  return {
    photo: await sharp(path.join(IMAGES_DIR, "tubingen.jpg"))
      .resize(edge, edge, { fit: "inside" })
      .png()
      .toBuffer(),
    painting: await sharp(path.join(IMAGES_DIR, "starry_night.jpg"))
      .resize(edge, edge, { fit: "inside" })
      .jpeg()
      .toBuffer(),
  };
}

export interface FormParts {
  content?: Buffer | [Buffer, string];
  styles?: (Buffer | [Buffer, string])[];
  options?: unknown;
  /** Extra fields, as [name, value or file]. */
  extra?: [string, string | Buffer][];
}

/** A job request as the page sends it: multipart with content, style(s) and options (JSON). */
export function jobForm(parts: FormParts): FormData {
  const form = new FormData();
  const file = (f: Buffer | [Buffer, string], fallback: string): [Blob, string] =>
    Array.isArray(f) ? [new Blob([new Uint8Array(f[0])]), f[1]] : [new Blob([new Uint8Array(f)]), fallback];
  if (parts.content) form.append("content", ...file(parts.content, "photo.png"));
  parts.styles?.forEach((s, i) => {
    form.append("style", ...file(s, `style-${i + 1}.jpg`));
  });
  if (parts.options !== undefined)
    form.append("options", typeof parts.options === "string" ? parts.options : JSON.stringify(parts.options));
  for (const [name, value] of parts.extra ?? []) {
    if (typeof value === "string") form.append(name, value);
    else form.append(name, new Blob([new Uint8Array(value)]), `${name}.bin`);
  }
  return form;
}

/** The job folders in a server's private folder (its owner file left out). */
export function jobDirs(server: StylegramServer): string[] {
  return fs.readdirSync(server.dir).filter((n) => n !== OWNER_FILE);
}

/** The job's JSON as the API sends it. */
export type JobJson = JobView;

/** Polls GET /api/jobs/:id until `until` holds (default: the job has ended). */
export async function waitForJob(
  server: StylegramServer,
  id: string,
  until: (j: JobJson) => boolean = (j) => ["done", "failed", "cancelled"].includes(j.state),
  timeoutMs = 60_000,
): Promise<JobJson> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await server.app.inject({ url: `/api/jobs/${id}` });
    const job = r.json() as JobJson;
    if (until(job)) return job;
    if (Date.now() > end) throw new Error(`job ${id} still ${job.state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export { bombPng } from "./png.js";

/** A form as the bytes a browser sends, with its content type (multipart, with the boundary). */
export async function encodeForm(form: FormData): Promise<{ body: Buffer; contentType: string }> {
  const request = new Request("http://localhost/", { method: "POST", body: form });
  return {
    body: Buffer.from(await request.arrayBuffer()),
    contentType: request.headers.get("content-type") as string,
  };
}

/** A raw HTTP/1.1 connection to a server: what it sends, and what comes back. */
export interface RawRequest {
  socket: net.Socket;
  /** Everything the server has answered so far. */
  answer(): string;
  /** Resolves when the server has closed the connection (or it was reset). */
  closed: Promise<void>;
}

/**
 * Opens a connection to `port` on loopback and sends the head of a POST and
 * the first `sent` bytes of its body: the rest is for the test to trickle, or withhold.
 */
export function rawPost(
  port: number,
  path: string,
  headers: Record<string, string>,
  first: Buffer,
  host = "127.0.0.1",
): RawRequest {
  const socket = net.connect(port, host);
  let answer = "";
  socket.on("data", (c: Buffer) => {
    answer += c.toString("latin1");
  });
  const closed = new Promise<void>((resolve) => {
    socket.on("close", () => resolve());
    socket.on("error", () => resolve());
  });
  const head = [
    `POST ${path} HTTP/1.1`,
    `Host: localhost:${port}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ].join("\r\n");
  socket.write(Buffer.concat([Buffer.from(head, "latin1"), first]));
  return { socket, answer: () => answer, closed };
}

/** Waits (at most 5 s) until no job waits or runs: a slot is free once its worker says the work has stopped, just after the job's ending. */
export async function drained(server: StylegramServer): Promise<{ waiting: number; running: number }> {
  for (let i = 0; i < 250 && (server.queue.counts.running > 0 || server.queue.counts.waiting > 0); i++)
    await new Promise((resolve) => setTimeout(resolve, 20));
  return server.queue.counts;
}
