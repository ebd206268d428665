import type { FastifyReply, FastifyRequest } from "fastify";
import { HttpError } from "./http-error.js";

/**
 * Two checks a web server on someone's machine needs because any web site they
 * visit can make their browser send requests to it:
 * - it answers only requests addressed to one of its own names (`allowed`:
 *   loopback, this machine's addresses, --allowed-host), so that a site whose
 *   name is made to resolve to this machine (DNS rebinding) gets 403, on
 *   loopback and on a network alike;
 * - a request that changes something (POST, DELETE) from a browser must come
 *   from the server's own page: its Origin, when sent, must be http:// and this
 *   host. Scripts (curl) send no Origin and are not affected.
 */
export function requestGuard(allowed: (host: string) => boolean) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const host = request.headers.host ?? "";
    if (!allowed(host)) {
      throw new HttpError(
        403,
        `this server answers requests for its own names only (localhost, this machine's addresses), not for "${host.slice(0, 80)}": ` +
          "open it by one of those, or start it with --allowed-host NAME to answer that name too",
      );
    }
    const origin = request.headers.origin;
    if ((request.method === "POST" || request.method === "DELETE") && origin !== undefined) {
      // Both sides through URL, so that a default port is written the same way (http://localhost = localhost:80).
      let same = false;
      try {
        const from = new URL(origin);
        same = from.protocol === "http:" && from.host === new URL(`http://${host}`).host;
      } catch {
        same = false;
      }
      if (!same) {
        throw new HttpError(403, `refused a ${request.method} from another site (${origin.slice(0, 80)})`);
      }
    }
  };
}
