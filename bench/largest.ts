/**
 * `npm run bench:large`: large outputs. For each size, one evaluation (forward + gradient) in tiles
 * (tiled time per evaluation, the set-up that computes the targets, peak RSS and the estimate the
 * run-time check uses), and, where the whole picture fits in this machine's memory, the untiled
 * evaluation beside it and the tiled overhead. Each measurement runs in its own process, so that
 * each peak RSS is its own; one that dies (out of memory) is reported as such.
 *
 *   npm run bench:large [-- --sizes 2048,4096,6144 --tile 512]
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { objectiveBytes, tiledObjectiveBytes } from "../src/objective/memory.js";
import { DEFAULTS } from "../src/options/defaults.js";
import { arg, CHILDREN, fmt, prepareImages, printTable } from "./common.js";

const sizes = arg("--sizes", "2048,4096,6144").split(",").map(Number);
const tile = Number(arg("--tile", "512"));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-large-"));
const total = os.totalmem();
const layers = [...DEFAULTS.contentLayers, ...DEFAULTS.styleLayers];

interface Measured {
  medianSeconds: number;
  peakRssMiB: number;
  setupSeconds?: number;
  tiles?: number;
}

function child(args: string[]): { ok: true; m: Measured } | { ok: false; why: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", CHILDREN, ...args], {
    encoding: "utf8",
    maxBuffer: 1 << 20,
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.status === 0) return { ok: true, m: JSON.parse(r.stdout.trim().split("\n").pop() as string) };
  return { ok: false, why: `fails (${r.signal ?? `exit ${r.status}`})` };
}

const rows: string[][] = [];
for (const size of sizes) {
  const { content, style } = await prepareImages(tmp, size, "square");
  const tiled = child(["eval-tiled", content, style, "1", String(tile)]);
  // The whole picture only where its estimate leaves room on this machine (at 2048: 16 GB).
  const wholeEstimate = objectiveBytes(size, size, layers);
  const whole = wholeEstimate < 0.8 * total ? child(["eval", content, style, "1"]) : undefined;
  const estimate = tiledObjectiveBytes(size, size, layers, DEFAULTS.contentLayers, tile);
  const mib = (b: number) => fmt(b / 2 ** 20, 0);
  rows.push([
    `${size}x${size}`,
    tiled.ok ? String(tiled.m.tiles) : "-",
    tiled.ok ? fmt(tiled.m.medianSeconds, 1) : tiled.why,
    tiled.ok ? fmt(tiled.m.setupSeconds, 0) : "-",
    tiled.ok ? fmt(tiled.m.peakRssMiB, 0) : "-",
    tiled.ok ? `${mib(estimate)} (${fmt((100 * estimate) / 2 ** 20 / tiled.m.peakRssMiB - 100, 0)}%)` : "-",
    whole === undefined
      ? `not run (needs ~${mib(wholeEstimate)})`
      : whole.ok
        ? fmt(whole.m.medianSeconds, 1)
        : whole.why,
    whole?.ok ? fmt(whole.m.peakRssMiB, 0) : "-",
    whole?.ok && tiled.ok ? `${fmt(tiled.m.medianSeconds / whole.m.medianSeconds, 2)}x` : "-",
  ]);
  // Printed as it goes: the whole table takes about an hour on two cores.
  console.log(rows.at(-1)?.join(" | "));
}
fs.rmSync(tmp, { recursive: true, force: true });
console.log(
  `\nLarge outputs, one evaluation, tiles of ${tile} px, on ${os.availableParallelism()} cores, ${(total / 2 ** 30).toFixed(0)} GiB (${os.cpus()[0]?.model ?? "unknown CPU"}):`,
);
printTable(
  [
    "size",
    "tiles",
    "tiled s/eval",
    "targets s",
    "tiled peak RSS MiB",
    "estimate MiB (vs peak)",
    "untiled s/eval",
    "untiled peak RSS MiB",
    "tiled / untiled",
  ],
  rows,
);
