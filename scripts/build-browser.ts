/**
 * Builds the browser module (stylegram/browser) into dist/browser: src/browser/index.ts, the page's
 * side, and src/browser/worker.ts, the run itself (the same src/stylize and src/objective as Node's),
 * each one ES module. The run's only Node-specific module, src/runtime/platform.ts, is swapped for
 * platform-web.ts (onnxruntime-web); anything else of Node's that came in would fail the build.
 * onnxruntime-web's wasm files are not bundled: they load beside the worker (src/browser/files.ts).
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile, type Plugin } from "esbuild";
import { MODULE_FILE, ORT_FILES, WORKER_FILE } from "../src/browser/files.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const BROWSER_OUT = path.join(ROOT, "dist", "browser");
const PLATFORM = path.join(ROOT, "src", "runtime", "platform.ts");

/** src/runtime/platform.js, wherever it is imported from, becomes platform-web.ts. */
const webPlatform: Plugin = {
  name: "stylegram-web-platform",
  setup(b) {
    b.onResolve({ filter: /platform\.js$/ }, (a) =>
      path.resolve(a.resolveDir, a.path.replace(/\.js$/, ".ts")) === PLATFORM
        ? { path: path.join(ROOT, "src", "runtime", "platform-web.ts") }
        : undefined,
    );
  },
};

/** Packages that only Node runs: one of them in a browser bundle is a mistake in the layering. */
const NODE_ONLY = /node_modules\/(onnxruntime-node|sharp|fastify|@fastify|h5wasm|env-paths|@techstark)\//;

export interface BrowserBuild {
  /** The inputs of each bundle, for the test that checks nothing of Node's came in. */
  inputs: Record<string, string[]>;
  bytes: Record<string, number>;
}

export async function buildBrowser(outdir = BROWSER_OUT, minify = true): Promise<BrowserBuild> {
  fs.mkdirSync(outdir, { recursive: true });
  const result: BrowserBuild = { inputs: {}, bytes: {} };
  for (const [entry, file] of [
    ["index.ts", MODULE_FILE],
    ["worker.ts", WORKER_FILE],
  ] as const) {
    const out = path.join(outdir, file);
    const r = await build({
      entryPoints: [path.join(ROOT, "src", "browser", entry)],
      outfile: out,
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      minify,
      metafile: true,
      legalComments: "none",
      logLevel: "warning",
      // onnxruntime-web without its wasm glue inlined: the glue and the .wasm load from the worker's folder.
      conditions: ["onnxruntime-web-use-extern-wasm"],
      plugins: [webPlatform],
    });
    const inputs = Object.keys((r.metafile as Metafile).inputs);
    const node = inputs.filter((i) => NODE_ONLY.test(i) || i.startsWith("node:"));
    if (node.length > 0) throw new Error(`${file} bundles Node-only code: ${node.join(", ")}`);
    result.inputs[file] = inputs;
    result.bytes[file] = fs.statSync(out).size;
  }
  // The wasm files the worker asks for are the ones serve and build:site provide.
  const worker = fs.readFileSync(path.join(outdir, WORKER_FILE), "utf8");
  const asked = [...new Set(worker.match(/ort-wasm-simd-threaded[\w.]*\.mjs/g) ?? [])];
  const glue = ORT_FILES.filter((f) => f.endsWith(".mjs"));
  if (asked.join() !== glue.join())
    throw new Error(
      `the worker loads ${asked.join(", ")}, but src/browser/files.ts lists ${glue.join(", ")}`,
    );
  return result;
}

/** onnxruntime-web's file `name`, from the installed package. */
export function ortFile(name: string): string {
  return fileURLToPath(import.meta.resolve(`onnxruntime-web/${name}`));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await buildBrowser();
  for (const [f, b] of Object.entries(r.bytes)) console.log(`${f}: ${(b / 1024).toFixed(0)} KiB`);
}
