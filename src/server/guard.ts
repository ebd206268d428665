import type { FastifyReply, FastifyRequest } from "fastify";
import { HttpError } from "./http-error.js";

/** Host names that mean this machine. */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

function hostname(host: string): string {
  return host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : (host.split(":")[0] ?? "");
}

/**
 * Two checks a local web server needs because any web site the user visits can
 * make the browser send requests to it:
 * - bound to loopback, it answers only requests addressed to a loopback name, so
 *   a site whose name is made to resolve to 127.0.0.1 (DNS rebinding) gets 403;
 * - a request that changes something (POST, DELETE) from a browser must come
 *   from the server's own page: its Origin, when sent, must be this host.
 *   Scripts (curl) send no Origin and are not affected.
 */
export function requestGuard(loopbackOnly: boolean) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const host = request.headers.host ?? "";
    if (loopbackOnly && !LOOPBACK.test(hostname(host))) {
      throw new HttpError(
        403,
        `this server answers requests for localhost only, not for "${host.slice(0, 80)}"; open it as http://localhost:PORT, or start it with --host to serve a network`,
      );
    }
    const origin = request.headers.origin;
    if ((request.method === "POST" || request.method === "DELETE") && origin !== undefined) {
      // Both sides through URL, so that a default port is written the same way (http://localhost = localhost:80).
      let same = false;
      try {
        const from = new URL(origin);
        same = from.host === new URL(`${from.protocol}//${host}`).host;
      } catch {
        same = false;
      }
      if (!same) {
        throw new HttpError(403, `refused a ${request.method} from another site (${origin.slice(0, 80)})`);
      }
    }
  };
}
