/**
 * `npm run bench`: the project's performance report, measured in one run, each
 * measurement in its own process:
 *   1. the best throughput of one large 3x3 Conv in onnxruntime (this machine's practical peak);
 *   2. per size, the median time of one evaluation (forward + gradient, default layers), the
 *      peak RSS and GFLOP/s, beside reference.py on the same images when /usr/bin/python3 has torch;
 *   3. a whole stylization at 256 px, 100 L-BFGS evaluations from the content image, beside reference.py;
 *   4. time to quality: the seconds stylegram (coarse to fine) needs to reach the loss reference.py
 *      reaches after 300 L-BFGS evaluations at 512 px, beside reference.py's own seconds.
 *
 *   npm run bench [-- --sizes 256,512,1024 --evals 5 --stylize-evals 100 --quality-evals 300
 *                     --quality-scales 512 --quality-iterations 600 --device cpu|webgpu|auto]
 * --device runs stylegram's measurements there (the Conv peak stays the CPU's).
 * A count of 0 skips that section.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { arg, fmt, prepareImages, printTable, runChild } from "./common.js";
import { REFERENCE_MISSING, referenceAvailable, referenceEvaluation, referenceStylize } from "./reference.js";

interface EvalResult {
  medianSeconds: number;
  peakRssMiB: number;
  gflop: number;
}

async function main(): Promise<void> {
  const sizes = arg("--sizes", "256,512,1024").split(",").filter(Boolean).map(Number);
  const evals = Number(arg("--evals", "5"));
  const stylizeEvals = Number(arg("--stylize-evals", "100"));
  const qualityEvals = Number(arg("--quality-evals", "300"));
  const qualityScales = arg("--quality-scales", "512");
  const qualityIterations = arg("--quality-iterations", "600");
  const withReference = referenceAvailable();
  // The children read it: every Objective and stylize() they make runs on this device.
  process.env.STYLEGRAM_BENCH_DEVICE = arg("--device", "cpu");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-bench-"));
  console.log(
    `stylegram bench on ${os.cpus()[0]?.model ?? "?"}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; device ${process.env.STYLEGRAM_BENCH_DEVICE}`,
  );
  if (!withReference) console.log(REFERENCE_MISSING);

  const peak = runChild<{ gflops: number }>("conv-peak", []);
  console.log(
    `\nPractical peak: one 512->512 3x3 Conv at 64x64 in onnxruntime: ${fmt(peak.gflops, 0)} GFLOP/s\n`,
  );

  const rows: string[][] = [];
  for (const size of sizes) {
    const { content, style } = await prepareImages(tmp, size, "square");
    const ours = runChild<EvalResult>("eval", [content, style, evals]);
    const ref = withReference
      ? referenceEvaluation(content, style, Math.max(3, Math.ceil(evals / 2)))
      : undefined;
    const gflops = ours.gflop / ours.medianSeconds;
    rows.push([
      `${size}x${size}`,
      fmt(ours.medianSeconds, 3),
      fmt(ours.peakRssMiB, 0),
      fmt(gflops, 0),
      `${fmt((100 * gflops) / peak.gflops, 0)}%`,
      fmt(ref?.medianSeconds, 3),
      fmt(ref?.peakRssMiB, 0),
      ref ? `${fmt(ref.medianSeconds / ours.medianSeconds)}x` : "-",
    ]);
  }
  if (rows.length > 0) {
    console.log("One evaluation (forward + gradient, default layers), median:");
    printTable(
      [
        "size",
        "stylegram s",
        "peak RSS MiB",
        "GFLOP/s",
        "of peak",
        "reference s",
        "reference RSS MiB",
        "speed-up",
      ],
      rows,
    );
  }

  if (stylizeEvals > 0) {
    const { content, style } = await prepareImages(tmp, 256, "long-edge");
    const ours = runChild<{ finalLoss: number; bestLoss: number; seconds: number }>("stylize", [
      content,
      style,
      stylizeEvals,
    ]);
    const table = [
      ["stylegram", ours.finalLoss.toExponential(4), ours.bestLoss.toExponential(4), fmt(ours.seconds, 1)],
    ];
    if (withReference) {
      const ref = referenceStylize(content, style, 256, stylizeEvals);
      const final = ref.evals.at(-1)?.loss ?? Number.NaN;
      const best = Math.min(...ref.evals.map((e) => e.loss));
      table.push(["reference.py", final.toExponential(4), best.toExponential(4), fmt(ref.wallSeconds, 1)]);
      table.push([
        "stylegram / reference",
        fmt(ours.finalLoss / final, 3),
        fmt(ours.bestLoss / best, 3),
        `${fmt(ref.wallSeconds / ours.seconds)}x faster`,
      ]);
    }
    console.log(
      `\nStylize 256 px from the content image, ${stylizeEvals} L-BFGS evaluations (wall time, start-up included):`,
    );
    printTable(["run", "final loss", "best loss", "wall s"], table);
  }

  if (qualityEvals > 0 && withReference) {
    const { content, style } = await prepareImages(tmp, 512, "long-edge");
    const ref = referenceStylize(content, style, 512, qualityEvals);
    const last = ref.evals.at(-1) as { loss: number; seconds: number };
    const ours = runChild<{ reached: boolean; seconds: number; iteration: number; loss: number }>(
      "to-quality",
      [content, style, last.loss, qualityScales, qualityIterations],
    );
    console.log(
      `\nTime to quality at 512 px: to reach reference.py's loss after ${qualityEvals} L-BFGS evaluations (${last.loss.toExponential(4)}):`,
    );
    printTable(
      ["run", "schedule", "evaluations", "loss", "seconds"],
      [
        [
          "reference.py",
          `512 x ${qualityEvals}`,
          String(ref.evals.length),
          last.loss.toExponential(4),
          fmt(last.seconds, 1),
        ],
        [
          "stylegram",
          `scales ${qualityScales}, at most ${qualityIterations}`,
          String(ours.iteration),
          `${ours.loss.toExponential(4)}${ours.reached ? "" : " (not reached)"}`,
          fmt(ours.seconds, 1),
        ],
        ["speed-up", "", "", "", ours.reached ? `${fmt(last.seconds / ours.seconds)}x` : "-"],
      ],
    );
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

await main();
