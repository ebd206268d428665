/**
 * Builds the web app's page into dist/web: web/app.ts bundled with uPlot into
 * one script, web/style.css with uPlot's styles into one stylesheet, and
 * index.html. Everything the page needs is served by stylegram itself (no CDN),
 * so it works offline. Run by `npm run build` (and so by `npm ci` and `npm pack`).
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SRC = path.join(ROOT, "web");
export const OUT = path.join(ROOT, "dist", "web");

export async function buildWeb(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  const common = { bundle: true, minify: true, logLevel: "warning", legalComments: "none" } as const;
  await build({
    ...common,
    entryPoints: [path.join(SRC, "app.ts")],
    outfile: path.join(OUT, "app.js"),
    format: "esm",
    target: "es2020",
  });
  await build({ ...common, entryPoints: [path.join(SRC, "style.css")], outfile: path.join(OUT, "app.css") });
  fs.copyFileSync(path.join(SRC, "index.html"), path.join(OUT, "index.html"));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await buildWeb();
