/**
 * `npm run bench`: the project's performance report, measured in one run, each
 * measurement in its own process:
 *   1. the best throughput of one large 3x3 Conv in onnxruntime (this machine's practical peak);
 *   2. per size, the median time of one evaluation (forward + gradient, default layers) in fp32 and
 *      int8, their peak RSS, beside reference.py in float32 and bfloat16 (CPU autocast) on the same
 *      images when /usr/bin/python3 has torch;
 *   3. a whole stylization at 256 px, 100 L-BFGS evaluations from the content image, beside reference.py;
 *   4. time to quality at 512 px, float32 losses only: the seconds `mixed` needs to reach the loss of
 *      our own 300-evaluation fp32 run; then the seconds each of reference.py float32, reference.py
 *      bfloat16, stylegram fp32 and stylegram mixed needs to reach reference.py float32's loss after
 *      300 evaluations.
 *
 * Before them, the headline (bench/headline.ts): the default command against reference.py, time to
 * a finished picture at 384 and 512 px; and where an iteration's time goes at full history.
 *
 *   npm run bench [-- --headline-sizes 384,512 --split-sizes 256,512,1024 --sizes 256,512,1024 --evals 5 --stylize-evals 100 --quality-evals 300
 *                     --mixed-evals 400 --device cpu|webgpu|auto]
 * --device runs stylegram's measurements there (the Conv peak stays the CPU's).
 * A count of 0 skips that section.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { arg, fmt, prepareImages, printTable, runChild } from "./common.js";
import { type HeadlineRow, headline, printHeadline } from "./headline.js";
import {
  REFERENCE_MISSING,
  referenceAvailable,
  referenceBf16ToQuality,
  referenceEvaluation,
  referenceStylize,
} from "./reference.js";

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
  const mixedEvals = Number(arg("--mixed-evals", "400"));
  const headlineSizes = arg("--headline-sizes", "384,512").split(",").filter(Boolean).map(Number);
  const splitSizes = arg("--split-sizes", "256,512,1024").split(",").filter(Boolean).map(Number);
  const withReference = referenceAvailable();
  // The children read it: every Objective and stylize() they make runs on this device.
  process.env.STYLEGRAM_BENCH_DEVICE = arg("--device", "cpu");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-bench-"));
  console.log(
    `stylegram bench on ${os.cpus()[0]?.model ?? "?"}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; device ${process.env.STYLEGRAM_BENCH_DEVICE}`,
  );
  if (!withReference) console.log(REFERENCE_MISSING);

  if (headlineSizes.length > 0 && headlineSizes[0] !== 0) {
    const rows: HeadlineRow[] = [];
    for (const size of headlineSizes) {
      const { content, style } = await prepareImages(tmp, size, "long-edge");
      rows.push(await headline(tmp, size, content, style, withReference));
    }
    printHeadline(rows);
  }

  if (splitSizes.length > 0 && splitSizes[0] !== 0) {
    const rows: string[][] = [];
    for (const size of splitSizes) {
      const { content, style } = await prepareImages(tmp, size, "long-edge");
      const r = runChild<{ objective: number; optimizer: number; other: number; precision: string }>(
        "split",
        [content, style, 100, 5],
      );
      const total = r.objective + r.optimizer + r.other;
      const share = (v: number) => `${fmt(v, 3)} (${fmt((100 * v) / total, 0)}%)`;
      rows.push([String(size), r.precision, share(r.objective), share(r.optimizer), share(r.other)]);
    }
    console.log(
      "\nWhere an iteration's time goes at full history (100 pairs), median seconds of 5 iterations:",
    );
    printTable(["size", "precision", "objective", "optimiser", "the rest"], rows);
  }

  const peak = runChild<{ gflops: number; int8Gflops: number }>("conv-peak", []);
  console.log(
    `\nPractical peak: one 512->512 3x3 convolution at 64x64 in onnxruntime: float32 Conv ${fmt(peak.gflops, 0)} GFLOP/s, int8 QLinearConv (u8 x s8) ${fmt(peak.int8Gflops, 0)} GFLOP/s (${fmt(peak.int8Gflops / peak.gflops)}x)\n`,
  );

  const rows: string[][] = [];
  for (const size of sizes) {
    const { content, style } = await prepareImages(tmp, size, "square");
    const fp32 = runChild<EvalResult>("eval", [content, style, evals, "fp32"]);
    const int8 = runChild<EvalResult>("eval", [content, style, evals, "int8"]);
    const refEvals = Math.max(3, Math.ceil(evals / 2));
    const ref = withReference ? referenceEvaluation(content, style, refEvals, "float32") : undefined;
    const bf16 = withReference ? referenceEvaluation(content, style, refEvals, "bfloat16") : undefined;
    const gflops = fp32.gflop / fp32.medianSeconds;
    rows.push([
      `${size}x${size}`,
      fmt(fp32.medianSeconds, 3),
      fmt(int8.medianSeconds, 3),
      `${fmt(fp32.medianSeconds / int8.medianSeconds)}x`,
      `${fmt(fp32.peakRssMiB, 0)} / ${fmt(int8.peakRssMiB, 0)}`,
      `${fmt((100 * gflops) / peak.gflops, 0)}%`,
      fmt(ref?.medianSeconds, 3),
      fmt(bf16?.medianSeconds, 3),
      ref ? `${fmt(ref.medianSeconds / int8.medianSeconds)}x` : "-",
      bf16 ? `${fmt(bf16.medianSeconds / int8.medianSeconds)}x` : "-",
    ]);
  }
  if (rows.length > 0) {
    console.log("One evaluation (forward + gradient, default layers), median seconds:");
    printTable(
      [
        "size",
        "fp32",
        "int8",
        "int8 speed-up",
        "peak RSS MiB fp32 / int8",
        "fp32 of Conv peak",
        "reference f32",
        "reference bf16",
        "int8 vs ref f32",
        "int8 vs ref bf16",
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

  if (qualityEvals > 0) {
    const { content, style } = await prepareImages(tmp, 512, "long-edge");
    const toQuality = (target: number, precision: "fp32" | "mixed", evaluations: number) =>
      runChild<{ reached: boolean; seconds: number; iteration: number; loss: number }>("to-quality", [
        content,
        style,
        target,
        "512",
        String(evaluations),
        precision,
      ]);
    const row = (
      run: string,
      r: { reached: boolean; seconds: number; iteration: number; loss: number },
      base?: number,
    ) => [
      run,
      String(r.iteration),
      `${r.loss.toExponential(4)}${r.reached ? "" : " (not reached)"}`,
      fmt(r.seconds, 1),
      base !== undefined && r.reached ? `${fmt(base / r.seconds)}x` : "",
    ];
    // Our own float32 run: its loss after `qualityEvals` evaluations is the first target.
    const ours = toQuality(0, "fp32", qualityEvals);
    const mixedOwn = toQuality(ours.loss, "mixed", mixedEvals);
    console.log(
      `\nTime to quality at 512 px, stylegram fp32's loss after ${qualityEvals} evaluations (${ours.loss.toExponential(4)}), float32 losses only:`,
    );
    printTable(
      ["run", "evaluations", "float32 loss", "seconds", "speed-up vs fp32"],
      [
        row(`stylegram fp32 (${qualityEvals})`, ours),
        row(`stylegram mixed (at most ${mixedEvals})`, mixedOwn, ours.seconds),
      ],
    );
    if (withReference) {
      const ref = referenceStylize(content, style, 512, qualityEvals);
      const last = ref.evals.at(-1) as { loss: number; seconds: number };
      const target = last.loss;
      const refRow = { reached: true, seconds: last.seconds, iteration: ref.evals.length, loss: target };
      const bf16 = referenceBf16ToQuality(content, style, Math.round(qualityEvals * 1.2), target);
      const fp32 = toQuality(target, "fp32", Math.round(qualityEvals * 1.5));
      const mixed = toQuality(target, "mixed", mixedEvals);
      console.log(
        `\nTime to quality at 512 px, reference.py float32's loss after ${qualityEvals} evaluations (${target.toExponential(4)}), float32 losses only:`,
      );
      printTable(
        ["run", "evaluations", "float32 loss", "seconds", "stylegram mixed speed-up"],
        [
          row("reference.py float32", refRow, undefined),
          row("reference.py bfloat16 (autocast)", { ...bf16, iteration: bf16.eval }),
          row("stylegram fp32", fp32),
          row(`stylegram mixed (at most ${mixedEvals})`, mixed),
          [
            "mixed vs reference float32",
            "",
            "",
            "",
            mixed.reached ? `${fmt(last.seconds / mixed.seconds)}x` : "-",
          ],
          [
            "mixed vs reference bfloat16",
            "",
            "",
            "",
            mixed.reached && bf16.reached ? `${fmt(bf16.seconds / mixed.seconds)}x` : "-",
          ],
        ],
      );
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

await main();
