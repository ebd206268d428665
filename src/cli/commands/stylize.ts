import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { StoppedBeforeStartError, UsageError } from "../../errors.js";
import {
  assertNotAnInput,
  checkWritable,
  samePath,
  writeFileAtomic,
  writeProblem,
} from "../../fsutil/atomic.js";
import { reserveOutput, saveResult } from "../../fsutil/results.js";
import { assertImageFile, encodeImage, formatForPath } from "../../image/io.js";
import { formatBytes } from "../../objective/memory.js";
import { defaultThreads } from "../../runtime/session.js";
import {
  COLORS,
  type Init,
  PRECISIONS,
  STYLE_SCALE_LIMITS,
  STYLIZE_DEFAULTS,
  type Stage,
} from "../../stylize/options.js";
import { MIXED_FP32_SHARE, planScales, stylize } from "../../stylize/stylize.js";
import {
  deviceFromFlags,
  OBJECTIVE_FLAGS,
  OBJECTIVE_HELP,
  objectiveOptions,
  tileFromFlags,
  weightsFromFlags,
} from "../objective-flags.js";
import { joinNegativeValues, oneOf, parseCount, parseNumber, parseNumbers, valueFlags } from "../parse.js";
import { ProgressReporter } from "../progress.js";
import { exitCodeFor, type StopSignal, withStopSignals } from "../signals.js";

export const STYLIZE_HELP = `Usage: stylegram CONTENT STYLE [STYLE...] -o OUT [options]

Repaints the CONTENT photo in the style of the STYLE image(s) and writes OUT
(format from its extension: .png, .jpg, .webp, .tif).

Output and optimisation:
  -o, --output FILE      the result (required); never one of the inputs
  -f, --force            overwrite OUT (and snapshots) if they exist
  --size N               long edge of the output in pixels (default ${STYLIZE_DEFAULTS.size}); above 1024,
                         coarse to fine by default: 512, 1024, ... up to N, each finer
                         scale with 5x fewer iterations (--size 4096: 300,60,12,5)
  --iterations N[,N...]  loss evaluations (default ${STYLIZE_DEFAULTS.iterations}); with --scales, per scale
  --scales S,S,...       coarse-to-fine: optimise at these long edges in turn, each from
                         the previous result upsampled; the last is the output size
                         (e.g. --scales 256,512 --iterations 200,100; --scales N for one scale)
  --init WHAT            noise, content, style, or an image FILE (default ${STYLIZE_DEFAULTS.init})
  --seed N               seed of the noise for --init noise (default ${STYLIZE_DEFAULTS.seed})
  --optimizer NAME       lbfgs or adam (default ${STYLIZE_DEFAULTS.optimizer})
  --learning-rate N      L-BFGS step (default ${STYLIZE_DEFAULTS.lbfgsLearningRate}) or Adam step in pixels (default ${STYLIZE_DEFAULTS.adamLearningRate})
  --history N            L-BFGS history size (default ${STYLIZE_DEFAULTS.historySize}, fewer when 100 pairs
                         would not fit beside the graph in memory)
  --line-search NAME     none or strong-wolfe, for L-BFGS (default ${STYLIZE_DEFAULTS.lineSearch})
  --precision P          fp32, int8 or mixed (default ${STYLIZE_DEFAULTS.precision}; a GPU runs fp32 only): int8
                         runs the convolutions on the CPU's int8 units, about 2.5x faster a
                         step and a few percent less accurate; mixed finishes each scale in
                         float32, so the picture is float32's optimum. CPU only.
  --style-scale N        style images at N x the output size (default ${STYLIZE_DEFAULTS.styleScale});
                         smaller values copy smaller strokes
  --print-every N        without a terminal, print progress every N iterations (default 10)
  --save-every N         also save the image every N iterations, as OUT_0100.png etc.
  --log FILE             one JSON line per iteration: {iteration, loss, content, style, tv, seconds,
                         device, precision}
  --max-memory SIZE      memory the run may use, e.g. 8G or 500M (default: what is available);
                         a run that would not fit stops at once and names the largest --size that does

Colour and regions (Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer"):
  --colors WHOSE         whose colours the picture has (default style):
                           style      the painting's, as in the classic transfer
                           histogram  the photo's: the painting is first recoloured to the photo's
                                      mean colour and colour covariance, then its strokes transferred
                           luminance  the photo's: only the luminance is stylized, the photo's
                                      chroma kept (best when the two images' brightness histograms
                                      are alike; else the picture's contrast can look off)
  --original-colors      the same as --colors luminance
  --mask FILE            styles by region: once per style image, in their order; that style applies
                         where its mask (drawn over the photo, resized to it) is white. Black in every
                         mask: no style there, the photo's content stays; under two masks: both styles.
                         With masks, --style-blend weighs the regions' styles.
  --style-mask FILE|none once per style image: take its style only where this mask over the style
                         image is white (none: the whole image)

${OBJECTIVE_HELP}

Examples:
  stylegram photo.jpg starry_night.jpg -o out.png
  stylegram photo.jpg scream.jpg --size 768 --style-weight 1000 --colors histogram -o out.jpg
  stylegram photo.jpg starry_night.jpg scream.jpg --mask sky.png --mask ground.png -o out.png
  stylegram photo.jpg a.jpg b.jpg --style-blend 0.7,0.3 --save-every 100 --log run.jsonl -o out.png
  stylegram photo.jpg starry_night.jpg --size 4096 -o print.png    (coarse to fine, in tiles)

Ctrl-C (or SIGTERM, SIGHUP) stops early and saves the best image so far; a second one quits
at once. If OUT cannot be written at the end (a full disk, say), the picture is kept in a
recovery file beside it or in the temporary folder, and the message says where.`;

/** Where the snapshot of an iteration goes: out.png -> out_0100.png. */
export function snapshotPath(output: string, iteration: number, iterations: number): string {
  const ext = path.extname(output);
  const digits = Math.max(4, String(iterations).length);
  return `${output.slice(0, output.length - ext.length)}_${String(iteration).padStart(digits, "0")}${ext}`;
}

/** "8G", "500M", "1.5GB", "2000000000": bytes. */
export function parseBytes(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(text);
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m?.[2] ?? "").toLowerCase()];
  const bytes = m && unit ? Number(m[1]) * unit : Number.NaN;
  if (!(bytes > 0)) throw new UsageError(`${flag} expects a size such as 8G or 500M, got "${text}"`);
  return bytes;
}

/** A line for each set-up step, so that no run sits silent while the weights load and the graph builds. */
function describeStage(s: Stage): string {
  if (s.stage === "notice") return `note: ${s.message}`;
  if (s.stage === "weights") return "loading the VGG19 weights";
  if (s.stage === "device") {
    const where = s.device === "webgpu" ? "the GPU (WebGPU)" : "the CPU";
    const arithmetic =
      s.precision === "int8"
        ? ", int8 convolutions (--precision int8)"
        : s.precision === "mixed"
          ? `, int8 convolutions then float32 for the last ${Math.round(MIXED_FP32_SHARE * 100)}% of the iterations (--precision mixed)`
          : "";
    return s.reason === "asked for"
      ? `computing on ${where}${arithmetic}`
      : `computing on ${where} (--device auto: ${s.reason})${arithmetic}`;
  }
  const where = (s.scales ?? 1) > 1 ? ` (scale ${s.scale}/${s.scales})` : "";
  const memory =
    s.estimatedBytes === undefined
      ? ""
      : `, about ${formatBytes(s.estimatedBytes)} of memory (${formatBytes(s.availableBytes ?? 0)} available)`;
  const tiles =
    s.tile === undefined
      ? ""
      : `, in tiles of ${s.tile} px (exact; each evaluation runs over every tile twice)`;
  return `preparing ${s.width}x${s.height}${where}: style targets and the objective graph${tiles}${memory}`;
}

/**
 * Appends the JSON log lines; a failed write (a full disk, say) is a warning and
 * ends the log, never the run that it describes.
 */
class RunLog {
  private fd: number | undefined;
  constructor(
    private readonly file: string,
    force: boolean,
    private readonly warn: (s: string) => void,
  ) {
    this.fd = fs.openSync(file, force ? "w" : "wx");
  }
  write(line: object): void {
    if (this.fd === undefined) return;
    try {
      fs.writeSync(this.fd, `${JSON.stringify(line)}\n`);
    } catch (e) {
      this.warn(`cannot write the log ${this.file} (${writeProblem(e)}): logging stops, the run goes on`);
      this.close();
    }
  }
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

const STYLIZE_FLAGS = {
  output: { type: "string", short: "o" },
  force: { type: "boolean", short: "f" },
  size: { type: "string" },
  iterations: { type: "string" },
  scales: { type: "string" },
  init: { type: "string" },
  seed: { type: "string" },
  optimizer: { type: "string" },
  "learning-rate": { type: "string" },
  history: { type: "string" },
  "line-search": { type: "string" },
  precision: { type: "string" },
  "style-scale": { type: "string" },
  colors: { type: "string" },
  "original-colors": { type: "boolean" },
  mask: { type: "string", multiple: true },
  "style-mask": { type: "string", multiple: true },
  "print-every": { type: "string" },
  "save-every": { type: "string" },
  log: { type: "string" },
  "max-memory": { type: "string" },
  help: { type: "boolean", short: "h" },
  ...OBJECTIVE_FLAGS,
} as const;

export const STYLIZE_FLAG_NAMES = Object.keys(STYLIZE_FLAGS);

export async function stylizeCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(argv, valueFlags(STYLIZE_FLAGS)),
    options: STYLIZE_FLAGS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(`${STYLIZE_HELP}\n`);
    return 0;
  }
  const [content, ...styles] = positionals;
  if (!content || styles.length === 0)
    throw new UsageError("give a content image and at least one style image");
  const output = values.output;
  if (!output) throw new UsageError("give the output file with -o OUT");
  const force = values.force === true;

  const iterationList = parseNumbers("--iterations", values.iterations);
  iterationList?.forEach((n) => {
    parseCount("--iterations", String(n));
  });
  const scales = parseNumbers("--scales", values.scales);
  scales?.forEach((n) => {
    parseCount("--scales", String(n));
  });
  const size = parseCount("--size", values.size);
  // Validated here, before minutes of work, and the totals known for snapshot names.
  const plan = planScales({
    ...(size === undefined ? {} : { size }),
    ...(scales === undefined ? {} : { scales }),
    ...(iterationList === undefined
      ? {}
      : { iterations: iterationList.length === 1 ? (iterationList[0] as number) : iterationList }),
  });
  const iterations = plan.reduce((n, p) => n + p.iterations, 0);
  const saveEvery = parseCount("--save-every", values["save-every"]);
  const seed = parseNumber("--seed", values.seed);
  if (seed !== undefined && !Number.isInteger(seed))
    throw new UsageError(`--seed expects a whole number, got "${values.seed}"`);
  const initText = values.init ?? STYLIZE_DEFAULTS.init;
  const init: Init =
    initText === "noise" || initText === "content" || initText === "style" ? initText : { image: initText };
  if (typeof init === "object" && !fs.existsSync(init.image as string)) {
    throw new UsageError(
      `--init ${initText}: give noise, content, style or an image file (no file ${initText} exists)`,
    );
  }
  const masks = values.mask;
  const styleMasks = values["style-mask"]?.map((m) => (m === "none" ? null : m));
  const perStyle = (flag: string, given: readonly unknown[] | undefined) => {
    if (given !== undefined && given.length !== styles.length)
      throw new UsageError(
        `${given.length} ${flag} for ${styles.length} style image${styles.length === 1 ? "" : "s"}: give ${flag} once per style image, in their order`,
      );
  };
  perStyle("--mask", masks);
  perStyle("--style-mask", styleMasks);
  const inputs = [
    content,
    ...styles,
    ...(typeof init === "object" ? [init.image as string] : []),
    ...(masks ?? []),
    ...(styleMasks ?? []).filter((m): m is string => m !== null),
  ];
  for (const f of inputs) assertImageFile(f);

  // Everything about the outputs is checked before minutes of work, not after.
  formatForPath(output);
  const snapshots =
    saveEvery === undefined
      ? []
      : Array.from({ length: Math.floor(iterations / saveEvery) }, (_, k) =>
          snapshotPath(output, (k + 1) * saveEvery, iterations),
        );
  const log = values.log;
  const outputs: [string, string][] = [
    ["-o", output],
    ...(log ? [["--log", log] as [string, string]] : []),
    ...snapshots.map((f) => ["--save-every", f] as [string, string]),
  ];
  // A run stopped without its result (a second Ctrl-C) leaves its log and snapshots but no OUT: say
  // that, and how to go on, rather than only that a file exists.
  const unfinished = !force && !fs.existsSync(output);
  outputs.forEach(([flag, file], i) => {
    assertNotAnInput(file, inputs);
    if (unfinished && flag !== "-o" && fs.existsSync(file)) {
      throw new UsageError(
        `${file} already exists, but ${output} does not: an earlier run that did not finish left it. ` +
          `Pass --force to replace that run's ${[log ? "log" : "", snapshots.length > 0 ? "snapshots" : ""].filter(Boolean).join(" and ")}, or give ${flag} another name`,
      );
    }
    checkWritable(file, force);
    const clash = outputs.slice(i + 1).find(([, other]) => samePath(other, file));
    if (clash)
      throw new UsageError(`${flag} and ${clash[0]} name the same file, ${file}: give them different names`);
  });

  const requestedThreads = parseCount("--threads", values.threads);
  const cores = defaultThreads();
  if (requestedThreads !== undefined && requestedThreads > cores) {
    process.stderr.write(
      `note: --threads ${requestedThreads} is more than the ${cores} cores here; using ${cores} (more threads than cores only slows onnxruntime down)\n`,
    );
  }
  const threads = requestedThreads === undefined ? undefined : Math.min(requestedThreads, cores);
  const learningRate = parseNumber("--learning-rate", values["learning-rate"]);
  if (learningRate !== undefined && !(learningRate > 0))
    throw new UsageError(`--learning-rate expects a number > 0, got "${values["learning-rate"]}"`);
  const history = parseCount("--history", values.history);
  const styleScale = parseNumber("--style-scale", values["style-scale"]);
  if (
    styleScale !== undefined &&
    !(styleScale >= STYLE_SCALE_LIMITS.min && styleScale <= STYLE_SCALE_LIMITS.max)
  )
    throw new UsageError(
      `--style-scale expects a number from ${STYLE_SCALE_LIMITS.min} to ${STYLE_SCALE_LIMITS.max}, got "${values["style-scale"]}"`,
    );
  const printEvery = parseCount("--print-every", values["print-every"]) ?? 10;
  const optimizer = oneOf("--optimizer", values.optimizer, ["lbfgs", "adam"] as const);
  const lineSearch = oneOf("--line-search", values["line-search"], ["none", "strong-wolfe"] as const);
  const precision = oneOf("--precision", values.precision, PRECISIONS);
  const colorsFlag = oneOf("--colors", values.colors, COLORS);
  if (values["original-colors"] === true && colorsFlag !== undefined && colorsFlag !== "luminance")
    throw new UsageError(
      `--original-colors is --colors luminance; it cannot go with --colors ${colorsFlag}: give only one of them`,
    );
  const colors = values["original-colors"] === true ? "luminance" : colorsFlag;
  const maxMemory = parseBytes("--max-memory", values["max-memory"]);
  const tile = tileFromFlags(values);
  const objective = objectiveOptions(values);
  if (objective.styleLayers?.length === 0) {
    process.stderr.write(
      objective.contentLayers?.length === 0
        ? "note: no content and no style layers: only the smoothness term is optimised\n"
        : "note: no style layers: the picture takes nothing from the painting\n",
    );
  }
  const device = deviceFromFlags(values);

  const progress = new ProgressReporter(process.stderr, printEvery);
  const warn = (s: string) => progress.line(`warning: ${s}`);
  const release = reserveOutput(output);
  let runLog: RunLog | undefined;
  try {
    runLog = log ? new RunLog(log, force, warn) : undefined;
    const stop = (sig: StopSignal) => {
      progress.end();
      process.stderr.write(
        `stopping (${sig === "SIGINT" ? "Ctrl-C" : sig}): saving the best image so far (${sig === "SIGINT" ? "Ctrl-C" : "the same signal"} again to quit without saving)\n`,
      );
    };
    let snapshotFailed = false;
    const { value: result, stoppedBy } = await withStopSignals(stop, async (signal) => {
      const weights = await weightsFromFlags(values, signal);
      try {
        return await stylize({
          content,
          styles,
          ...objective,
          iterations: plan.map((p) => p.iterations),
          scales: plan.map((p) => p.size),
          init,
          ...(styleScale === undefined ? {} : { styleScale }),
          ...(seed === undefined ? {} : { seed }),
          ...(optimizer === undefined ? {} : { optimizer }),
          ...(learningRate === undefined ? {} : { learningRate }),
          ...(history === undefined ? {} : { historySize: history }),
          ...(lineSearch === undefined ? {} : { lineSearch }),
          ...(maxMemory === undefined ? {} : { maxMemory }),
          ...(tile === undefined ? {} : { tile }),
          ...(device === undefined ? {} : { device }),
          ...(precision === undefined ? {} : { precision }),
          weights,
          ...(threads === undefined ? {} : { threads }),
          ...(colors === undefined ? {} : { colors }),
          ...(masks === undefined ? {} : { masks }),
          ...(styleMasks === undefined ? {} : { styleMasks }),
          signal,
          onStage: (s) => progress.line(describeStage(s)),
          onProgress: (p) => {
            progress.update(p);
            runLog?.write({
              iteration: p.iteration,
              loss: p.loss,
              content: p.content,
              style: p.style,
              tv: p.tv,
              seconds: p.seconds,
              device: p.device,
              precision: p.precision,
            });
          },
          ...(saveEvery === undefined
            ? {}
            : {
                snapshotEvery: saveEvery,
                onSnapshot: async (img, iteration) => {
                  const file = snapshotPath(output, iteration, iterations);
                  try {
                    writeFileAtomic(file, await encodeImage(img, formatForPath(file)), { overwrite: force });
                  } catch (e) {
                    // One warning, not one per snapshot: the run and its final picture matter more.
                    if (!snapshotFailed) warn(`${(e as Error).message}; snapshots fail, the run goes on`);
                    snapshotFailed = true;
                  }
                },
              }),
        });
      } catch (e) {
        if (e instanceof StoppedBeforeStartError) return undefined;
        throw e;
      }
    });
    progress.end();
    if (result === undefined) {
      process.stderr.write("stopped before the first iteration: nothing to save\n");
      return exitCodeFor(stoppedBy, 130);
    }
    const bytes = await encodeImage(result.image, formatForPath(output));
    const saved = saveResult(output, bytes, force);
    const summary =
      `${result.image.width}x${result.image.height}, ${result.iterations} iterations, ` +
      `loss ${result.loss.total.toExponential(4)}, ${result.seconds.toFixed(1)} s`;
    if (saved.failure !== undefined) {
      process.stderr.write(
        `stylegram: ${saved.failure}.\nThe finished picture (${summary}) is kept in ${saved.path}: move it where you want it.\n`,
      );
      return 1;
    }
    process.stderr.write(`wrote ${output} (${summary})\n`);
    return exitCodeFor(stoppedBy, result.reason === "aborted" ? 130 : 0);
  } finally {
    runLog?.close();
    release();
  }
}
