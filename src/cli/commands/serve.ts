import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";
import { StylegramError, UsageError } from "../../errors.js";
import { MIN_TOKEN_LENGTH, parseTokens } from "../../server/auth.js";
import { browserFilesProblem } from "../../server/browser-files.js";
import { hostName, isLoopback } from "../../server/hosts.js";
import { WEB_DIR } from "../../server/web-dir.js";
import { weightsFromFlags } from "../objective-flags.js";
import { joinNegativeValues, parseCount, parseNumber, valueFlags } from "../parse.js";
import { withStopSignals } from "../signals.js";

export const SERVE_HELP = `Usage: stylegram serve [--port 8080] [--host 127.0.0.1] [--concurrency 1] [--queue URL]

Serves the web app: a page to drop a photo and style images on, with a live
preview, the loss curve and downloads, and the HTTP API it uses (README: Web app).

Options:
  --port N             port to listen on (default 8080; 0 picks a free one)
  --host ADDRESS       address to listen on (default 127.0.0.1, this machine only);
                       0.0.0.0 serves everyone on your network
  --allowed-host NAME  a name the page may be opened by besides localhost and this
                       machine's addresses, such as mybox.local (repeat for more)
  --concurrency N      jobs that compute at once (default 1); the others wait in line
  --queue URL          put the jobs on a Redis queue (redis://HOST:PORT[/DB]) for
                       'stylegram worker' processes on any machine to run, instead of
                       running them here; several servers may share one queue
  --token TOKEN        a token every API request must carry (Authorization: Bearer;
                       the page asks for it once); repeat for more. Off loopback
                       without one, a token is made and printed, which requests from
                       other machines need
  --tokens-file FILE   tokens, one a line (# starts a comment): kept out of 'ps'
  --weights PATH       VGG19 weights: a folder, a Keras .h5 or a .safetensors file
                       (default: $STYLEGRAM_WEIGHTS, else the cache of 'stylegram models fetch')
  --fetch              download the weights into the cache first if they are missing

Uploads and results live in a private temporary folder, removed when the
server stops (Ctrl-C, SIGTERM); a result stays downloadable for an hour.
With --queue they live in Redis instead, and outlive the server.
Errors and failed jobs are reported on stderr. GET /metrics (Prometheus) and
GET /healthz are for monitoring.

Examples:
  stylegram serve
  stylegram serve --port 3000 --concurrency 2
  stylegram serve --host 0.0.0.0 --allowed-host mybox.local --tokens-file tokens.txt
  stylegram serve --host 0.0.0.0 --queue redis://127.0.0.1:6379 --tokens-file tokens.txt`;

export const SERVE_FLAGS = {
  port: { type: "string" },
  host: { type: "string" },
  "allowed-host": { type: "string", multiple: true },
  concurrency: { type: "string" },
  queue: { type: "string" },
  token: { type: "string", multiple: true },
  "tokens-file": { type: "string" },
  weights: { type: "string" },
  fetch: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export const SERVE_FLAG_NAMES = Object.keys(SERVE_FLAGS);

export async function serveCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(argv, valueFlags(SERVE_FLAGS)),
    options: SERVE_FLAGS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(`${SERVE_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) {
    throw new UsageError(
      `serve takes no file arguments (got ${positionals[0]}): the page uploads the images`,
    );
  }
  const port = parseNumber("--port", values.port) ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port expects a port number from 0 to 65535, got "${values.port}"`);
  const host = values.host ?? "127.0.0.1";
  if (host !== "localhost" && net.isIP(host) === 0) {
    throw new UsageError(`--host expects an IP address such as 127.0.0.1 or 0.0.0.0, got "${host}"`);
  }
  const allowedHosts = values["allowed-host"] ?? [];
  for (const name of allowedHosts) {
    if (hostName(name) !== name.toLowerCase() || name.includes(":")) {
      throw new UsageError(
        `--allowed-host expects a host name or address such as mybox.local or 192.168.1.5, without a scheme or port, got "${name}"`,
      );
    }
  }
  const concurrency = parseCount("--concurrency", values.concurrency) ?? 1;
  if (values.queue !== undefined && values.concurrency !== undefined) {
    throw new UsageError(
      "--concurrency is the workers' with --queue: give it to 'stylegram worker --concurrency N' on each machine",
    );
  }
  // Imported only when asked for, so that a plain serve does not load BullMQ.
  const queueAddress =
    values.queue === undefined
      ? undefined
      : (await import("../../queue/connection.js")).parseQueueUrl(values.queue);
  const tokens = readTokens(values.token ?? [], values["tokens-file"]);
  if (!fs.existsSync(path.join(WEB_DIR, "index.html"))) {
    throw new StylegramError(
      `the web page is not built (no ${WEB_DIR}index.html): run npm run build in the clone`,
    );
  }
  // The page computes in visitors' browsers with the browser module, which the same build makes.
  const browserProblem = browserFilesProblem();
  if (browserProblem) throw new StylegramError(browserProblem);
  const loopback = isLoopback(host);
  // Off loopback the API needs a token: without one given, one is made for this run and printed.
  const madeToken = !loopback && tokens.length === 0 ? randomBytes(24).toString("base64url") : undefined;
  if (madeToken) tokens.push(madeToken);

  // Ctrl-C or SIGTERM is how a server is meant to end: a clean stop exits 0.
  const { value } = await withStopSignals(
    (sig) =>
      process.stderr.write(
        `stopping (${sig === "SIGINT" ? "Ctrl-C" : sig}): cancelling the jobs, removing the uploads\n`,
      ),
    async (signal) => {
      process.stderr.write("loading the VGG19 weights\n");
      const weights = await weightsFromFlags(values, signal);
      // Imported here, so that the other commands do not load the web server.
      const { buildServer, buildQueueServer } = await import("../../server/app.js");
      const options = {
        weights,
        concurrency,
        allowedHosts,
        log: process.stderr,
        tokens,
        tokensFromOtherMachines: madeToken !== undefined,
      };
      let server: Awaited<ReturnType<typeof buildQueueServer>>;
      if (queueAddress) {
        const { redisLine } = await import("../../queue/redis-line.js");
        process.stderr.write(`connecting to the job queue at ${queueAddress.shown}\n`);
        try {
          server = await buildQueueServer(options, redisLine(queueAddress));
        } catch (e) {
          throw new StylegramError((e as Error).message);
        }
      } else {
        server = await buildServer(options);
      }
      for (const stale of server.removedStale) {
        process.stderr.write(`removed ${stale}, left behind by a server that was killed\n`);
      }
      try {
        await server.app.listen({ port, host });
      } catch (e) {
        await server.app.close();
        const why = (e as { code?: string }).code;
        if (why === "EADDRINUSE")
          throw new StylegramError(
            `port ${port} is in use: give another with --port N (or --port 0 for any free one)`,
          );
        if (why === "EADDRNOTAVAIL")
          throw new StylegramError(
            `${host} is not an address of this machine: give one of its addresses, or 0.0.0.0 for all`,
          );
        if (why === "EACCES")
          throw new StylegramError(
            `port ${port} needs special rights here: use a port above 1023 (--port 8080)`,
          );
        throw e;
      }
      const address = server.app.server.address() as net.AddressInfo;
      const shown = loopback
        ? host.includes(":")
          ? "[::1]"
          : "localhost"
        : host.includes(":")
          ? `[${host}]`
          : host;
      if (!loopback) {
        process.stderr.write(
          `warning: listening on ${host}: anyone who can reach this machine on that network can open the page; ` +
            "the API takes only requests with a token. Use the default --host 127.0.0.1 to keep it to yourself.\n",
        );
      }
      if (madeToken) {
        process.stderr.write(
          `no --token or --tokens-file given: other machines need this run's token, ${madeToken}\n` +
            "  (the page asks for it once; give it to those who may use this server; this machine needs none)\n",
        );
      } else if (tokens.length > 0) {
        process.stderr.write(`requests need one of ${tokens.length} token${tokens.length > 1 ? "s" : ""}\n`);
      }
      out(`stylegram serve: open http://${shown}:${address.port}/ (Ctrl-C stops it)\n`);
      process.stderr.write(
        queueAddress
          ? `jobs go to the queue at ${queueAddress.shown}, for 'stylegram worker --queue ...' to run\n`
          : `${concurrency} job${concurrency > 1 ? "s" : ""} at a time; uploads and results in ${server.dir}\n`,
      );
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener("abort", () => resolve(), { once: true });
      });
      await server.app.close();
      return 0;
    },
  );
  return value;
}

/** The tokens of --token and --tokens-file, each long enough not to be guessed. */
function readTokens(given: readonly string[], file: string | undefined): string[] {
  const tokens = [...given];
  if (file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw new UsageError(`--tokens-file: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    const found = parseTokens(text);
    if (found.length === 0)
      throw new UsageError(`--tokens-file: ${file} has no token (one a line, # for comments)`);
    tokens.push(...found);
  }
  for (const t of tokens) {
    if (t.length < MIN_TOKEN_LENGTH || /\s/.test(t)) {
      throw new UsageError(
        `a token must be at least ${MIN_TOKEN_LENGTH} characters without spaces, so that it cannot be guessed; make one with: openssl rand -base64 24`,
      );
    }
  }
  return tokens;
}
