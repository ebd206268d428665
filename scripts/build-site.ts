/**
 * `npm run build:site`: a folder that any static host serves (no `stylegram serve`), whose page
 * computes in the visitor's browser only: the page, the browser module and its worker, onnxruntime-web's
 * wasm build, the options' schema, and the weights' descriptor (with their SHA-256), plus the weights
 * themselves unless --weights-url says where they are hosted.
 *
 *   npm run build:site -- [--out dist/site] [--weights PATH] [--weights-url URL]
 *
 * (npm run build:site builds the page and the module first.)
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { WEIGHTS_DESCRIPTOR } from "../src/browser/weights.js";
import { weightsFor } from "../src/cli/weights.js";
import type { VggWeights } from "../src/network/weights.js";
import {
  browserFiles,
  browserFilesProblem,
  WEIGHTS_FILE,
  weightsForBrowser,
} from "../src/server/browser-files.js";
import { JOB_OPTIONS } from "../src/server/options.js";
import { OUT as WEB_OUT } from "./build-web.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The page's marker: a page with it computes in the browser only and reads options.json, not the API. */
export const STATIC_MARKER = '<meta name="stylegram-site" content="static" />';
export const SITE_OPTIONS = "options.json";

export interface SiteOptions {
  out: string;
  weights: VggWeights;
  /** Where the weights file will be served from; default: copied into the folder, beside the page. */
  weightsUrl?: string;
}

export async function buildSite(o: SiteOptions): Promise<{ files: string[] }> {
  // Built by npm run build (which npm run build:site runs first).
  const problem = browserFilesProblem();
  if (problem) throw new Error(problem);
  if (!fs.existsSync(path.join(WEB_OUT, "app.js")))
    throw new Error(`${WEB_OUT} is not built: run npm run build`);
  fs.rmSync(o.out, { recursive: true, force: true });
  fs.mkdirSync(o.out, { recursive: true });
  const html = fs.readFileSync(path.join(WEB_OUT, "index.html"), "utf8");
  if (!html.includes("<head>")) throw new Error(`${WEB_OUT}index.html has no <head>`);
  fs.writeFileSync(path.join(o.out, "index.html"), html.replace("<head>", `<head>\n    ${STATIC_MARKER}`));
  for (const f of ["app.js", "app.css"]) fs.copyFileSync(path.join(WEB_OUT, f), path.join(o.out, f));
  for (const [name, file] of browserFiles()) fs.copyFileSync(file, path.join(o.out, name));
  fs.writeFileSync(path.join(o.out, SITE_OPTIONS), JSON.stringify({ schema: JOB_OPTIONS }));
  const { bytes, descriptor } = weightsForBrowser(o.weights);
  if (o.weightsUrl === undefined) fs.writeFileSync(path.join(o.out, WEIGHTS_FILE), bytes);
  else descriptor.url = new URL(o.weightsUrl).href;
  fs.writeFileSync(path.join(o.out, WEIGHTS_DESCRIPTOR), `${JSON.stringify(descriptor, null, 2)}\n`);
  // Hosts that read a _headers file (Netlify, Cloudflare Pages) serve the site cross-origin isolated,
  // so that wasm has threads; elsewhere it runs on one thread.
  fs.writeFileSync(
    path.join(o.out, "_headers"),
    "/*\n  Cross-Origin-Opener-Policy: same-origin\n  Cross-Origin-Embedder-Policy: require-corp\n",
  );
  return { files: fs.readdirSync(o.out).sort() };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: path.join(ROOT, "dist", "site") },
      weights: { type: "string" },
      "weights-url": { type: "string" },
    },
  });
  const weights = await weightsFor(values.weights, false);
  const out = path.resolve(values.out);
  const r = await buildSite({
    out,
    weights,
    ...(values["weights-url"] ? { weightsUrl: values["weights-url"] } : {}),
  });
  console.log(`${out}: ${r.files.join(", ")}`);
}
