import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { message, opt, StoppedBeforeStartError, UsageError } from "../../errors.js";
import {
  assertNotAnInput,
  canonicalPath,
  checkWritable,
  writeFileAtomic,
  writeProblem,
} from "../../fsutil/atomic.js";
import { reserveOutput, saveResult } from "../../fsutil/results.js";
import { assertImageFile, encodeImage, formatForPath } from "../../image/io.js";
import { formatBytes } from "../../objective/memory.js";
import { checkOption } from "../../options/check.js";
import { DEFAULTS } from "../../options/defaults.js";
import { defaultThreads } from "../../runtime/session.js";
import { type Stage, type StylizeOptions, validateStylizeOptions } from "../../stylize/options.js";
import { STOP_WINDOW } from "../../stylize/run.js";
import { MIXED_FP32_SHARE, planScales, stylize } from "../../stylize/stylize.js";
import { flagHelp, optionsFromFlags, parseArgsOptions, withFlagErrors } from "../options.js";
import { joinNegativeValues, valueFlags } from "../parse.js";
import { ProgressReporter } from "../progress.js";
import { exitCodeFor, type StopSignal, withStopSignals } from "../signals.js";
import { weightsFor } from "../weights.js";

export const STYLIZE_HELP = `Usage: stylegram CONTENT STYLE [STYLE...] -o OUT [options]

Repaints the CONTENT photo in the style of the STYLE image(s) and writes OUT
(format from its extension: .png, .jpg, .webp, .tif).

${flagHelp("stylize", ["output", "optimisation", "colour", "objective", "runtime"])}

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

const STYLIZE_FLAGS = { ...parseArgsOptions("stylize"), help: { type: "boolean", short: "h" } } as const;

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
  return withFlagErrors(values, () => run(values, positionals));
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

async function run(values: Values, positionals: string[]): Promise<number> {
  const [content, ...styles] = positionals;
  if (!content || styles.length === 0)
    throw new UsageError("give a content image and at least one style image");
  const flags = optionsFromFlags("stylize", values);
  const {
    output,
    force = false,
    saveEvery,
    log,
    printEvery,
    fetch,
    weights: weightsPath,
    ...library
  } = flags as {
    output?: string;
    force?: boolean;
    saveEvery?: number;
    log?: string;
    printEvery?: number;
    fetch?: boolean;
    weights?: string;
  } & Omit<StylizeOptions, "content" | "styles">;
  if (!output) throw new UsageError("give the output file with -o OUT");
  const options: StylizeOptions = { ...library, content, styles };
  // Every option checked by the library before minutes of work (and the weights' loading).
  validateStylizeOptions(options);
  for (const [name, v] of Object.entries({ saveEvery, printEvery }))
    if (v !== undefined) checkOption(name, v);
  // The totals are known here, for the snapshots' names.
  const steps = planScales(options);
  const iterations = steps.reduce((n, p) => n + p.iterations, 0);
  const { init, masks, styleMasks } = options;
  if (typeof init === "object" && typeof init.image === "string" && !fs.existsSync(init.image)) {
    throw new UsageError(
      message`${opt("init", init.image)}: give noise, content, style or an image file (no file ${init.image} exists)`,
      { option: "init" },
    );
  }
  const inputs = [
    content,
    ...styles,
    ...(typeof init === "object" ? [init.image as string] : []),
    ...((masks ?? []) as string[]),
    ...((styleMasks ?? []) as (string | null)[]).filter((m): m is string => m !== null),
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
  const outputs: [string, string][] = [
    ["-o", output],
    ...(log ? [["--log", log] as [string, string]] : []),
    ...snapshots.map((f) => ["--save-every", f] as [string, string]),
  ];
  // A run stopped without its result (a second Ctrl-C) leaves its log and snapshots but no OUT: say
  // that, and how to go on, rather than only that a file exists.
  const unfinished = !force && !fs.existsSync(output);
  // Keyed by one spelling of each path, so that thousands of snapshots are checked in a moment.
  const named = new Map<string, string>();
  for (const [flag, file] of outputs) {
    assertNotAnInput(file, inputs);
    if (unfinished && flag !== "-o" && fs.existsSync(file)) {
      throw new UsageError(
        `${file} already exists, but ${output} does not: an earlier run that did not finish left it. ` +
          `Pass --force to replace that run's ${[log ? "log" : "", snapshots.length > 0 ? "snapshots" : ""].filter(Boolean).join(" and ")}, or give ${flag} another name`,
      );
    }
    checkWritable(file, force);
    const key = canonicalPath(file);
    const earlier = named.get(key);
    if (earlier !== undefined)
      throw new UsageError(`${earlier} and ${flag} name the same file, ${file}: give them different names`);
    named.set(key, flag);
  }

  const cores = defaultThreads();
  if (options.threads !== undefined && options.threads > cores) {
    process.stderr.write(
      `note: --threads ${options.threads} is more than the ${cores} cores here; using ${cores} (more threads than cores only slows onnxruntime down)\n`,
    );
    options.threads = cores;
  }
  if (options.styleLayers?.length === 0) {
    process.stderr.write(
      options.contentLayers?.length === 0
        ? "note: no content and no style layers: only the smoothness term is optimised\n"
        : "note: no style layers: the picture takes nothing from the painting\n",
    );
  }

  const progress = new ProgressReporter(process.stderr, printEvery ?? DEFAULTS.printEvery);
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
      const weights = await weightsFor(weightsPath, fetch === true, signal);
      try {
        return await stylize({
          ...options,
          // The scales as planned above, so that the snapshots' names match the run.
          iterations: steps.map((p) => p.iterations),
          scales: steps.map((p) => p.size),
          weights,
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
              timing: p.timing,
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
    if (result.reason === "converged") {
      process.stderr.write(
        `note: stopped after ${result.iterations} of ${iterations} iterations: the loss fell by less than ${(100 * (options.stopBelow ?? DEFAULTS.stopBelow)).toPrecision(2)}% over the last ${STOP_WINDOW} (--stop-below 0 runs them all)\n`,
      );
    }
    process.stderr.write(`wrote ${output} (${summary})\n`);
    return exitCodeFor(stoppedBy, result.reason === "aborted" ? 130 : 0);
  } finally {
    runLog?.close();
    release();
  }
}
