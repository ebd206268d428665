/**
 * `npm run bench`: the median time of one objective evaluation (forward + gradient,
 * default layers) and the peak RSS, at each size, for stylegram and, when
 * /usr/bin/python3 has torch, for ../shared/reference/reference.py on the same
 * images in the same run. Each measurement runs in its own process so that its
 * peak RSS is its own.
 *
 *   npm run bench [-- --sizes 256,512 --evals 7]
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");
const SHARED = path.resolve(ROOT, "..", "shared");
const REFERENCE = path.join(SHARED, "reference");
const PYTHON = "/usr/bin/python3";

interface Measurement {
  size: number;
  medianSeconds: number;
  evalSeconds: number[];
  peakRssMiB: number;
  gflop?: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

/** Writes the content and style images at exactly size x size as PNG, so both implementations read the same pixels. */
async function prepareImages(
  dir: string,
  size: number,
  fit: "square" | "long-edge",
): Promise<{ content: string; style: string }> {
  const content = path.join(dir, `content_${size}_${fit}.png`);
  const style = path.join(dir, `style_${size}_${fit}.png`);
  for (const [src, dst] of [
    ["tubingen.jpg", content],
    ["starry_night.jpg", style],
  ] as const) {
    const image = sharp(path.join(SHARED, "images", src));
    const resized =
      fit === "square"
        ? image.resize(size, size, { fit: "fill", kernel: "lanczos3" })
        : image.resize(size, size, { fit: "inside", kernel: "lanczos3" });
    await resized.png().toFile(dst);
  }
  return { content, style };
}

/** Child process: stylegram's evaluation at one size. */
async function measureStylegram(content: string, style: string, evals: number): Promise<void> {
  const { loadImage } = await import("../src/image/io.js");
  const { toNetworkInput } = await import("../src/image/image.js");
  const { loadManifestWeights } = await import("../src/network/formats/manifest.js");
  const { Objective } = await import("../src/objective/objective.js");
  const weights = loadManifestWeights(path.join(SHARED, "models", "vgg19"));
  const c = await loadImage(content);
  const s = await loadImage(style);
  const objective = await Objective.create({ weights, content: c, styles: [s] });
  const x = toNetworkInput(c);
  await objective.evaluate(x); // warm-up: the memory arena grows to its working size
  const times: number[] = [];
  for (let i = 0; i < evals; i++) {
    const t = performance.now();
    await objective.evaluate(x);
    times.push((performance.now() - t) / 1000);
  }
  const result: Measurement = {
    size: c.width,
    medianSeconds: median(times),
    evalSeconds: times,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    gflop: objective.flops / 1e9,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

interface StylizeMeasurement {
  finalLoss: number;
  bestLoss: number;
  seconds: number;
  evaluations: number;
}

/** Child process: 100 L-BFGS evaluations from the content image, as reference.py run does by default. */
async function measureStylize(content: string, style: string, iterations: number): Promise<void> {
  const { loadImage } = await import("../src/image/io.js");
  const { stylize } = await import("../src/stylize/stylize.js");
  const c = await loadImage(content);
  const s = await loadImage(style);
  let last = Number.NaN;
  const t = performance.now();
  const r = await stylize({
    content: c,
    styles: [s],
    size: Math.max(c.width, c.height),
    iterations,
    init: "content",
    weights: path.join(SHARED, "models", "vgg19"),
    onProgress: (p) => {
      last = p.total;
    },
  });
  const result: StylizeMeasurement = {
    finalLoss: last,
    bestLoss: r.loss.total,
    seconds: (performance.now() - t) / 1000,
    evaluations: r.iterations,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function referenceStylize(
  content: string,
  style: string,
  size: number,
  iterations: number,
): StylizeMeasurement {
  const t = performance.now();
  const out = execFileSync(
    PYTHON,
    [
      path.join(REFERENCE, "reference.py"),
      "run",
      content,
      style,
      "--size",
      String(size),
      "--iterations",
      String(iterations),
    ],
    { encoding: "utf8", maxBuffer: 16 << 20, stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { eval: number; loss: number; seconds: number });
  const final = lines[lines.length - 1] as { eval: number; loss: number; seconds: number };
  return {
    finalLoss: final.loss,
    bestLoss: Math.min(...lines.map((l) => l.loss)),
    seconds: (performance.now() - t) / 1000,
    evaluations: lines.length,
  };
}

const REFERENCE_TIMER = `
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
import reference as R
torch.set_num_threads(os.cpu_count())
content, style, evals = sys.argv[2], sys.argv[3], int(sys.argv[4])
w = R.load_vgg19()
c = R.preprocess(R.load_png(content)); s = R.preprocess(R.load_png(style))
obj = R.Objective(w, c, s, ["relu4_2"], ["relu1_1","relu2_1","relu3_1","relu4_1","relu5_1"],
                  content_weight=5.0, style_weight=500.0, tv_weight=1e-3, pooling="max")
def once():
    x = c.clone().requires_grad_(True)
    obj.total(x).backward()
once()
times = []
for _ in range(evals):
    t = time.perf_counter(); once(); times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"size": c.shape[-1], "medianSeconds": times[len(times)//2], "evalSeconds": times,
                  "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

function referenceAvailable(): boolean {
  if (!fs.existsSync(PYTHON) || !fs.existsSync(path.join(REFERENCE, "reference.py"))) return false;
  return spawnSync(PYTHON, ["-c", "import torch, PIL"], { stdio: "ignore" }).status === 0;
}

function runChild(command: string, args: string[]): Measurement {
  const out = execFileSync(command, args, {
    encoding: "utf8",
    maxBuffer: 1 << 20,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = out.trim().split("\n").pop() as string;
  return JSON.parse(line) as Measurement;
}

function fmt(v: number | undefined, digits = 2): string {
  return v === undefined || Number.isNaN(v) ? "-" : v.toFixed(digits);
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows) console.log(line(r));
}

async function main(): Promise<void> {
  if (process.argv[2] === "--child") {
    await measureStylegram(process.argv[3] as string, process.argv[4] as string, Number(process.argv[5]));
    return;
  }
  if (process.argv[2] === "--child-stylize") {
    await measureStylize(process.argv[3] as string, process.argv[4] as string, Number(process.argv[5]));
    return;
  }
  const sizes = arg("--sizes", "256,512").split(",").map(Number);
  const evals = Number(arg("--evals", "7"));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-bench-"));
  const withReference = referenceAvailable();
  const rows: string[][] = [];
  for (const size of sizes) {
    const { content, style } = await prepareImages(tmp, size, "square");
    const ours = runChild(process.execPath, [
      "--import",
      "tsx",
      fileURLToPath(import.meta.url),
      "--child",
      content,
      style,
      String(evals),
    ]);
    const ref = withReference
      ? runChild(PYTHON, [
          "-c",
          REFERENCE_TIMER,
          REFERENCE,
          content,
          style,
          String(Math.max(3, Math.ceil(evals / 2))),
        ])
      : undefined;
    rows.push([
      `${size}x${size}`,
      fmt(ours.medianSeconds, 3),
      fmt(ours.peakRssMiB, 0),
      fmt((ours.gflop ?? 0) / ours.medianSeconds, 0),
      fmt(ref?.medianSeconds, 3),
      fmt(ref?.peakRssMiB, 0),
      ref ? `${fmt(ref.medianSeconds / ours.medianSeconds)}x` : "-",
    ]);
  }
  const stylizeSize = Number(arg("--stylize-size", "256"));
  const stylizeEvals = Number(arg("--stylize-evals", "100"));
  let stylizeRows: string[][] = [];
  if (stylizeEvals > 0) {
    const { content, style } = await prepareImages(tmp, stylizeSize, "long-edge");
    const ours = JSON.parse(
      execFileSync(
        process.execPath,
        [
          "--import",
          "tsx",
          fileURLToPath(import.meta.url),
          "--child-stylize",
          content,
          style,
          String(stylizeEvals),
        ],
        { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
      )
        .trim()
        .split("\n")
        .pop() as string,
    ) as StylizeMeasurement;
    const ref = withReference ? referenceStylize(content, style, stylizeSize, stylizeEvals) : undefined;
    stylizeRows = [
      [
        "stylegram",
        String(ours.evaluations),
        ours.finalLoss.toExponential(4),
        ours.bestLoss.toExponential(4),
        fmt(ours.seconds, 1),
      ],
    ];
    if (ref) {
      stylizeRows.push([
        "reference.py",
        String(ref.evaluations),
        ref.finalLoss.toExponential(4),
        ref.bestLoss.toExponential(4),
        fmt(ref.seconds, 1),
      ]);
      stylizeRows.push([
        "ratio",
        "",
        fmt(ours.finalLoss / ref.finalLoss, 3),
        fmt(ours.bestLoss / ref.bestLoss, 3),
        `${fmt(ref.seconds / ours.seconds)}x faster`,
      ]);
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  const header = [
    "size",
    "eval median s",
    "peak RSS MiB",
    "GFLOP/s",
    "reference s",
    "reference RSS MiB",
    "speed-up",
  ];
  console.log(
    `stylegram bench: one evaluation (forward + gradient, default layers), ${os.availableParallelism()} cores`,
  );
  printTable(header, rows);
  if (stylizeRows.length > 0) {
    console.log(
      `\nstylize ${stylizeSize} px from the content image, ${stylizeEvals} L-BFGS evaluations (tubingen, starry_night):`,
    );
    printTable(["run", "evaluations", "final loss", "best loss", "wall s"], stylizeRows);
  }
  if (!withReference) {
    console.log(
      `reference.py not measured: ${PYTHON} lacks torch/PIL (apt-get install python3-torch python3-pil)`,
    );
  }
}

await main();
