/**
 * `npm run bench:browser`: one evaluation of the objective (loss and gradient) at 256 px with the
 * default layers, in Node on the CPU (onnxruntime-node) and in headless chromium's Web Worker on
 * onnxruntime-web's wasm build (threads: the page is cross-origin isolated), with `--webgpu` also on
 * the browser's WebGPU adapter (here SwiftShader's: a CPU, named as such in the table). The same
 * stylize() run of a few iterations in each; medians of the evaluations after the first.
 *
 *   npm run bench:browser [-- --size 256 --iterations 5 --webgpu]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import type * as Stylegram from "../src/browser/index.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import { buildServer } from "../src/server/app.js";
import { browserFilesProblem } from "../src/server/browser-files.js";
import { stylize } from "../src/stylize/stylize.js";
import { arg, fmt, median, prepareImages, printTable, WEIGHTS } from "./common.js";

const size = Number(arg("--size", "256"));
const iterations = Number(arg("--iterations", "5"));
const webgpu = process.argv.includes("--webgpu");

interface Row {
  where: string;
  threads: string;
  evaluation: number;
  step: number;
}

const problem = browserFilesProblem();
if (problem) throw new Error(problem);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-bench-browser-"));
const { content, style } = await prepareImages(tmp, size, "long-edge");
const weights = loadManifestWeights(WEIGHTS);
const rows: Row[] = [];
const after = <T>(xs: T[]) => xs.slice(1);

{
  const evaluations: number[] = [];
  const steps: number[] = [];
  await stylize({
    content,
    styles: [style],
    size,
    iterations,
    weights,
    device: "cpu",
    onProgress: (p) => {
      evaluations.push(p.timing.objective);
      steps.push(p.timing.optimizer);
    },
  });
  rows.push({
    where: "Node, onnxruntime-node CPU",
    threads: String(os.availableParallelism()),
    evaluation: median(after(evaluations)),
    step: median(after(steps)),
  });
}

const server = await buildServer({ weights });
await server.app.listen({ port: 0, host: "127.0.0.1" });
const base = `http://localhost:${(server.app.server.address() as { port: number }).port}/`;
const browser = await chromium.launch({
  executablePath: process.env.STYLEGRAM_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--enable-unsafe-webgpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  await page.addInitScript("globalThis.__name = (f) => f");
  await page.goto(base);
  const bytes = (f: string) => [...fs.readFileSync(f)];
  for (const device of webgpu ? ["wasm", "webgpu"] : ["wasm"]) {
    const r = await page.evaluate(
      async ({ c, s, size, iterations, device }) => {
        const m = (await import("/stylegram-browser.js" as string)) as typeof Stylegram;
        const blob = (b: number[]) => new Blob([new Uint8Array(b)], { type: "image/png" });
        const evaluations: number[] = [];
        const steps: number[] = [];
        let reason = "";
        await m.stylize({
          content: blob(c),
          styles: [blob(s)],
          size,
          iterations,
          device: device as Stylegram.BrowserDeviceRequest,
          onStage: (st) => {
            if (st.stage === "device") reason = st.reason ?? "";
          },
          onProgress: (p) => {
            evaluations.push(p.timing.objective);
            steps.push(p.timing.optimizer);
          },
        });
        return {
          evaluations,
          steps,
          reason,
          threads: crossOriginIsolated ? navigator.hardwareConcurrency : 1,
        };
      },
      { c: bytes(content), s: bytes(style), size, iterations, device },
    );
    rows.push({
      where: `chromium ${device}${device === "webgpu" ? ` (${r.reason})` : ""}`,
      threads: device === "wasm" ? String(r.threads) : "-",
      evaluation: median(after(r.evaluations)),
      step: median(after(r.steps)),
    });
  }
} finally {
  await browser.close();
  await server.app.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}

const node = rows[0]?.evaluation ?? Number.NaN;
console.log(
  `One evaluation (loss and gradient) at ${size} px, default layers; median of iterations 2..${iterations}`,
);
printTable(
  ["where", "threads", "evaluation (s)", "L-BFGS step (s)", "vs Node"],
  rows.map((r) => [
    r.where,
    r.threads,
    fmt(r.evaluation, 3),
    fmt(r.step, 3),
    `${fmt(r.evaluation / node, 2)}x`,
  ]),
);
