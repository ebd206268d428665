import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { isLoopback } from "./hosts.js";
import { HttpError } from "./http-error.js";

/** The cookie the page's token is kept in, so that its event streams, previews and downloads carry it too. */
export const TOKEN_COOKIE = "stylegram_token";
/** How long a browser keeps the token: the page asks once, not every visit. */
const COOKIE_DAYS = 30;
/** A token shorter than this is guessable: refused when the server starts. */
export const MIN_TOKEN_LENGTH = 16;

const digest = (token: string) => createHash("sha256").update(token, "utf8").digest();

/** The token in a request: `Authorization: Bearer TOKEN`, else the page's cookie. */
function presented(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    return m?.[1];
  }
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === TOKEN_COOKIE) return decodeURIComponent(value.join("="));
  }
  return undefined;
}

/** Paths anyone may fetch: the page itself (it asks for the token) and the health check. */
function isPublic(url: string): boolean {
  const path = url.split("?")[0] ?? "";
  return !(path.startsWith("/api/") || path === "/api" || path === "/metrics");
}

/**
 * Access by token for a server that others can reach: every request to the API or /metrics
 * must carry one of `tokens`, or it is refused with 401 in onRequest, before its body is read or
 * anything is looked up. Tokens are compared by their SHA-256 digests in constant time (a
 * digest's length is fixed, so timingSafeEqual applies, and the time taken says nothing of how
 * much of a token matched).
 */
export class TokenCheck {
  private readonly digests: Buffer[];

  /**
   * `fromOtherMachines`: only requests from other machines need a token; this machine's own
   * programs (loopback, the server's owner, as for the limits) need none. For the token a server
   * off loopback makes itself when none is given; given tokens hold for every request (a reverse
   * proxy on the same machine makes every request a loopback one).
   */
  constructor(
    tokens: readonly string[],
    private readonly fromOtherMachines = false,
  ) {
    this.digests = tokens.map(digest);
  }

  valid(token: string | undefined): boolean {
    if (token === undefined) return false;
    const d = digest(token);
    let ok = false;
    // Every token is compared, so that which one matched takes no other time than none.
    for (const known of this.digests) ok = timingSafeEqual(d, known) || ok;
    return ok;
  }

  /** The onRequest hook: 401 for a request to the API without a valid token. */
  hook() {
    return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      if (isPublic(request.url)) return;
      if (this.fromOtherMachines && isLoopback(request.ip)) return;
      // POST /api/login checks the token it is given itself.
      if (request.method === "POST" && request.url.split("?")[0] === "/api/login") return;
      if (this.valid(presented(request))) return;
      reply.header("www-authenticate", 'Bearer realm="stylegram"');
      throw new HttpError(
        401,
        "this server needs a token: send it as 'Authorization: Bearer TOKEN' (the page asks for it once); its owner gives it out",
      );
    };
  }

  /**
   * POST /api/login: checks `Authorization: Bearer TOKEN` and, when it is valid, sets it as an
   * HttpOnly, same-site cookie, which the page's EventSource, images and download links carry.
   */
  login(request: FastifyRequest, reply: FastifyReply): { ok: true } {
    const token = presented(request);
    if (!request.headers.authorization || !this.valid(token)) {
      reply.header("www-authenticate", 'Bearer realm="stylegram"');
      throw new HttpError(401, "that token is not one this server takes: check it with the server's owner");
    }
    const secure = request.protocol === "https" ? "; Secure" : "";
    reply.header(
      "set-cookie",
      `${TOKEN_COOKIE}=${encodeURIComponent(token as string)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${COOKIE_DAYS * 86_400}${secure}`,
    );
    return { ok: true };
  }
}

/** The tokens in a tokens file: one a line; blank lines and lines starting with # are left out. */
export function parseTokens(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}
