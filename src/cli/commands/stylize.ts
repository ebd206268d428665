import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { StylegramError, UsageError } from "../../errors.js";
import { assertNotAnInput } from "../../fsutil/atomic.js";
import { formatForPath, saveImage } from "../../image/io.js";
import { type Init, STYLIZE_DEFAULTS } from "../../stylize/options.js";
import { planScales, stylize } from "../../stylize/stylize.js";
import { OBJECTIVE_FLAGS, OBJECTIVE_HELP, objectiveOptions, weightsFromFlags } from "../objective-flags.js";
import { oneOf, parseCount, parseNumber, parseNumbers } from "../parse.js";
import { ProgressReporter } from "../progress.js";

export const STYLIZE_HELP = `Usage: stylegram CONTENT STYLE [STYLE...] -o OUT [options]

Repaints the CONTENT photo in the style of the STYLE image(s) and writes OUT
(format from its extension: .png, .jpg, .webp, .tif).

Output and optimisation:
  -o, --output FILE      the result (required); never one of the inputs
  -f, --force            overwrite OUT (and snapshots) if they exist
  --size N               long edge of the output in pixels (default ${STYLIZE_DEFAULTS.size})
  --iterations N[,N...]  loss evaluations (default ${STYLIZE_DEFAULTS.iterations}); with --scales, per scale
  --scales S,S,...       coarse-to-fine: optimise at these long edges in turn, each from
                         the previous result upsampled; the last is the output size
                         (e.g. --scales 256,512 --iterations 200,100)
  --init WHAT            noise, content, style, or an image FILE (default ${STYLIZE_DEFAULTS.init})
  --seed N               seed of the noise for --init noise (default ${STYLIZE_DEFAULTS.seed})
  --optimizer NAME       lbfgs or adam (default ${STYLIZE_DEFAULTS.optimizer})
  --learning-rate N      L-BFGS step (default ${STYLIZE_DEFAULTS.lbfgsLearningRate}) or Adam step in pixels (default ${STYLIZE_DEFAULTS.adamLearningRate})
  --history N            L-BFGS history size (default ${STYLIZE_DEFAULTS.historySize}, fewer when 100 pairs
                         would not fit beside the graph in memory)
  --line-search NAME     none or strong-wolfe, for L-BFGS (default ${STYLIZE_DEFAULTS.lineSearch})
  --style-scale N        style images at N x the output size (default ${STYLIZE_DEFAULTS.styleScale});
                         smaller values copy smaller strokes
  --original-colors      keep the content's colours (luminance-only transfer)
  --print-every N        without a terminal, print progress every N iterations (default 10)
  --save-every N         also save the image every N iterations, as OUT_0100.png etc.
  --log FILE             one JSON line per iteration: {iteration, loss, content, style, tv, seconds}
${OBJECTIVE_HELP}

Examples:
  stylegram photo.jpg starry_night.jpg -o out.png
  stylegram photo.jpg scream.jpg --size 768 --style-weight 1000 --original-colors -o out.jpg
  stylegram photo.jpg a.jpg b.jpg --style-blend 0.7,0.3 --save-every 100 --log run.jsonl -o out.png

Ctrl-C stops early and saves the best image so far; a second Ctrl-C quits at once.`;

/** Where the snapshot of an iteration goes: out.png -> out_0100.png. */
export function snapshotPath(output: string, iteration: number, iterations: number): string {
  const ext = path.extname(output);
  const digits = Math.max(4, String(iterations).length);
  return `${output.slice(0, output.length - ext.length)}_${String(iteration).padStart(digits, "0")}${ext}`;
}

function checkWritable(file: string, force: boolean): void {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new StylegramError(`cannot write ${file}: folder ${dir} does not exist`);
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new StylegramError(`cannot write ${file}: folder ${dir} is not writable`);
  }
  if (fs.existsSync(file) && !force) {
    throw new StylegramError(`${file} already exists: pass --force to overwrite it`, { exitCode: 2 });
  }
}

export async function stylizeCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
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
      "style-scale": { type: "string" },
      "original-colors": { type: "boolean" },
      "print-every": { type: "string" },
      "save-every": { type: "string" },
      log: { type: "string" },
      help: { type: "boolean", short: "h" },
      ...OBJECTIVE_FLAGS,
    },
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
  const inputs = [content, ...styles, ...(typeof init === "object" ? [init.image as string] : [])];
  for (const f of inputs) if (!fs.existsSync(f)) throw new StylegramError(`image ${f} does not exist`);

  // Everything about the outputs is checked before minutes of work, not after.
  formatForPath(output);
  assertNotAnInput(output, inputs);
  checkWritable(output, force);
  const snapshots =
    saveEvery === undefined
      ? []
      : Array.from({ length: Math.floor(iterations / saveEvery) }, (_, k) =>
          snapshotPath(output, (k + 1) * saveEvery, iterations),
        );
  for (const s of snapshots) {
    assertNotAnInput(s, inputs);
    checkWritable(s, force);
  }
  const log = values.log;
  if (log) {
    assertNotAnInput(log, inputs);
    checkWritable(log, force);
  }

  const threads = parseCount("--threads", values.threads);
  const learningRate = parseNumber("--learning-rate", values["learning-rate"]);
  const history = parseCount("--history", values.history);
  const styleScale = parseNumber("--style-scale", values["style-scale"]);
  const printEvery = parseCount("--print-every", values["print-every"]) ?? 10;
  const optimizer = oneOf("--optimizer", values.optimizer, ["lbfgs", "adam"] as const);
  const lineSearch = oneOf("--line-search", values["line-search"], ["none", "strong-wolfe"] as const);

  const weights = await weightsFromFlags(values);
  const logFd = log ? fs.openSync(log, "w") : undefined;
  const progress = new ProgressReporter(process.stderr, printEvery);
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write("\nstopping: saving the best image so far (Ctrl-C again to quit without saving)\n");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  try {
    const result = await stylize({
      content,
      styles,
      ...objectiveOptions(values),
      iterations: plan.map((p) => p.iterations),
      scales: plan.map((p) => p.size),
      init,
      ...(styleScale === undefined ? {} : { styleScale }),
      ...(seed === undefined ? {} : { seed }),
      ...(optimizer === undefined ? {} : { optimizer }),
      ...(learningRate === undefined ? {} : { learningRate }),
      ...(history === undefined ? {} : { historySize: history }),
      ...(lineSearch === undefined ? {} : { lineSearch }),
      weights,
      ...(threads === undefined ? {} : { threads }),
      originalColors: values["original-colors"] === true,
      signal: controller.signal,
      onProgress: (p) => {
        progress.update(p);
        if (logFd !== undefined) {
          const line = {
            iteration: p.iteration,
            loss: p.total,
            content: p.content,
            style: p.style,
            tv: p.tv,
            seconds: p.seconds,
          };
          fs.writeSync(logFd, `${JSON.stringify(line)}\n`);
        }
      },
      ...(saveEvery === undefined
        ? {}
        : {
            snapshotEvery: saveEvery,
            onSnapshot: (img, iteration) => saveImage(snapshotPath(output, iteration, iterations), img),
          }),
    });
    if (result.reason === "aborted") progress.end();
    await saveImage(output, result.image);
    process.stderr.write(
      `wrote ${output} (${result.image.width}x${result.image.height}, ${result.iterations} iterations, ` +
        `loss ${result.loss.total.toExponential(4)}, ${result.seconds.toFixed(1)} s)\n`,
    );
    return result.reason === "aborted" ? 130 : 0;
  } finally {
    process.off("SIGINT", onSigint);
    if (logFd !== undefined) fs.closeSync(logFd);
  }
}
