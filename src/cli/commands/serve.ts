import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";
import { StylegramError, UsageError } from "../../errors.js";
import { hostName, isLoopback } from "../../server/hosts.js";
import { WEB_DIR } from "../../server/web-dir.js";
import { weightsFromFlags } from "../objective-flags.js";
import { joinNegativeValues, parseCount, parseNumber, valueFlags } from "../parse.js";
import { withStopSignals } from "../signals.js";

export const SERVE_HELP = `Usage: stylegram serve [--port 8080] [--host 127.0.0.1] [--concurrency 1]

Serves the web app: a page to drop a photo and style images on, with a live
preview, the loss curve and downloads, and the HTTP API it uses (README: Web app).

Options:
  --port N             port to listen on (default 8080; 0 picks a free one)
  --host ADDRESS       address to listen on (default 127.0.0.1, this machine only);
                       0.0.0.0 serves everyone on your network
  --allowed-host NAME  a name the page may be opened by besides localhost and this
                       machine's addresses, such as mybox.local (repeat for more)
  --concurrency N      jobs that compute at once (default 1); the others wait in line
  --weights PATH       VGG19 weights: a folder, a Keras .h5 or a .safetensors file
                       (default: $STYLEGRAM_WEIGHTS, else the cache of 'stylegram models fetch')
  --fetch              download the weights into the cache first if they are missing

Uploads and results live in a private temporary folder, removed when the
server stops (Ctrl-C, SIGTERM); a result stays downloadable for an hour.
Errors and failed jobs are reported on stderr.

Examples:
  stylegram serve
  stylegram serve --port 3000 --concurrency 2
  stylegram serve --host 0.0.0.0 --allowed-host mybox.local`;

export const SERVE_FLAGS = {
  port: { type: "string" },
  host: { type: "string" },
  "allowed-host": { type: "string", multiple: true },
  concurrency: { type: "string" },
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
  if (!fs.existsSync(path.join(WEB_DIR, "index.html"))) {
    throw new StylegramError(
      `the web page is not built (no ${WEB_DIR}index.html): run npm run build in the clone`,
    );
  }
  const loopback = isLoopback(host);

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
      const { buildServer } = await import("../../server/app.js");
      const server = await buildServer({ weights, concurrency, allowedHosts, log: process.stderr });
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
          `warning: listening on ${host}: anyone who can reach this machine on that network can use this server ` +
            "(upload images and use its processor). Use the default --host 127.0.0.1 to keep it to yourself.\n",
        );
      }
      out(`stylegram serve: open http://${shown}:${address.port}/ (Ctrl-C stops it)\n`);
      process.stderr.write(
        `${concurrency} job${concurrency > 1 ? "s" : ""} at a time; uploads and results in ${server.dir}\n`,
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
