import type { ServerResponse } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { JobEvent } from "./jobs.js";
import type { JobFeed } from "./line.js";

/** Seconds between comment lines that keep idle proxies and browsers from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;

function write(res: ServerResponse, type: string, data: unknown): void {
  res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
}

/**
 * A job's server-sent events. The format is a few lines of text per event
 * (`event:`, `data:`, a blank line), so it is written here directly rather
 * than through a plugin. Each stream opens with a `snapshot` (the whole job,
 * with its loss history), so that a page that reloads or attaches late draws
 * everything at once and then follows the live events; it ends after the
 * job's ending event (`done`, `failed` or `cancelled`).
 */
export class EventStreams {
  /** Each open stream and what ends its subscription. */
  private readonly open = new Map<ServerResponse, () => void>();

  attach(request: FastifyRequest, reply: FastifyReply, feed: JobFeed): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-content-type-options": "nosniff",
    });
    // A browser that loses the stream tries again after this long (and gets a new snapshot).
    res.write("retry: 2000\n\n");
    write(res, "snapshot", feed.snapshot);
    const { state } = feed.snapshot;
    if (state === "done" || state === "failed" || state === "cancelled") {
      res.end();
      return;
    }
    const heartbeat = setInterval(() => res.write(": still here\n\n"), HEARTBEAT_MS);
    heartbeat.unref();
    const stop = () => {
      clearInterval(heartbeat);
      unsubscribe();
      this.open.delete(res);
    };
    const unsubscribe = feed.subscribe((e: JobEvent) => {
      const { type, ...data } = e;
      write(res, type, data);
      if (type === "done" || type === "failed" || type === "cancelled") {
        stop();
        res.end();
      }
    });
    this.open.set(res, stop);
    request.raw.on("close", stop);
  }

  /** Ends every open stream, so that the server can close. */
  closeAll(): void {
    for (const [res, stop] of [...this.open]) {
      stop();
      res.end();
    }
  }
}
