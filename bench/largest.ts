/**
 * `npm run bench:large`: which output sizes one evaluation (forward + gradient)
 * fits in this machine's memory, with the peak RSS of each and the L-BFGS
 * history it leaves room for. Each size runs in its own process; one that dies
 * (out of memory) is reported as such.
 *
 *   npm run bench:large [-- --sizes 1024,1536,2048,2560]
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULTS } from "../src/defaults.js";
import { objectiveBytes } from "../src/objective/memory.js";
import { arg, CHILDREN, fmt, prepareImages, printTable } from "./common.js";

const sizes = arg("--sizes", "1024,1536,2048").split(",").map(Number);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-large-"));
const total = os.totalmem() / 2 ** 20;
const rows: string[][] = [];
for (const size of sizes) {
  const { content, style } = await prepareImages(tmp, size, "square");
  const t = performance.now();
  const r = spawnSync(process.execPath, ["--import", "tsx", CHILDREN, "eval", content, style, "1"], {
    encoding: "utf8",
    maxBuffer: 1 << 20,
  });
  const seconds = (performance.now() - t) / 1000;
  if (r.status === 0) {
    const m = JSON.parse(r.stdout.trim().split("\n").pop() as string) as {
      medianSeconds: number;
      peakRssMiB: number;
    };
    // Each L-BFGS pair holds two float32 images.
    const pairMiB = (2 * 3 * size * size * 4) / 2 ** 20;
    const history = Math.max(0, Math.floor((0.9 * total - m.peakRssMiB) / pairMiB));
    // The estimate the run-time check uses, for the same graph (manifest weights, no optimiser state).
    const estimateMiB =
      objectiveBytes(size, size, [...DEFAULTS.contentLayers, ...DEFAULTS.styleLayers]) / 2 ** 20;
    rows.push([
      `${size}x${size}`,
      "runs",
      fmt(m.medianSeconds, 1),
      fmt(m.peakRssMiB, 0),
      `${fmt(estimateMiB, 0)} (${fmt((100 * estimateMiB) / m.peakRssMiB - 100, 0)}%)`,
      String(history),
      fmt(seconds, 0),
    ]);
  } else {
    rows.push([
      `${size}x${size}`,
      `fails (${r.signal ?? `exit ${r.status}`})`,
      "-",
      "-",
      "-",
      "-",
      fmt(seconds, 0),
    ]);
  }
}
fs.rmSync(tmp, { recursive: true, force: true });
console.log(`Largest outputs on ${os.availableParallelism()} cores, ${(total / 1024).toFixed(0)} GiB:`);
printTable(
  [
    "size",
    "one evaluation",
    "eval s",
    "peak RSS MiB",
    "estimate MiB (vs peak)",
    "L-BFGS pairs that fit",
    "wall s",
  ],
  rows,
);
