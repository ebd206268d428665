import fs from "node:fs";
import type { FastifyInstance } from "fastify";
import { WEIGHTS_DESCRIPTOR } from "../browser/weights.js";
import type { VggWeights } from "../network/weights.js";
import {
  browserFiles,
  browserFilesProblem,
  WEIGHTS_FILE,
  type WeightsForBrowser,
  weightsForBrowser,
} from "./browser-files.js";
import { HttpError } from "./http-error.js";

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
};

/**
 * GET /stylegram-browser.js, its worker and onnxruntime-web's files, and the weights the server
 * computes with, as the browser module reads them (a descriptor with their SHA-256, then the file).
 * The weights are encoded on the first request for them, not at start.
 */
export function registerBrowserFiles(app: FastifyInstance, weights: VggWeights): void {
  const files = browserFiles();
  const problem = browserFilesProblem();
  for (const [name, file] of files) {
    app.get(`/${name}`, async (_request, reply) => {
      if (problem) throw new HttpError(503, problem);
      const type = TYPES[name.slice(name.lastIndexOf("."))] ?? "application/octet-stream";
      return reply.type(type).header("cache-control", "no-cache").send(fs.createReadStream(file));
    });
  }
  let encoded: WeightsForBrowser | undefined;
  const get = () => {
    encoded ??= weightsForBrowser(weights);
    return encoded;
  };
  app.get(`/${WEIGHTS_DESCRIPTOR}`, async (_request, reply) =>
    reply.header("cache-control", "no-cache").send(get().descriptor),
  );
  app.get(`/${WEIGHTS_FILE}`, async (_request, reply) =>
    reply
      .type("application/octet-stream")
      .header("cache-control", "no-cache")
      .send(Buffer.from(get().bytes.buffer, get().bytes.byteOffset, get().bytes.byteLength)),
  );
}
