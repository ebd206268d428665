import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  type BatchItem,
  type BatchOptions,
  crossItems,
  type ItemReport,
  stylizeBatch,
} from "../../api/batch.js";
import { StylegramError, UsageError } from "../../errors.js";
import { checkOption } from "../../options/check.js";
import { DEFAULTS } from "../../options/defaults.js";
import { validateStylizeOptions } from "../../stylize/options.js";
import { flagHelp, optionsFromFlags, parseArgsOptions, withFlagErrors } from "../options.js";
import { joinNegativeValues, valueFlags } from "../parse.js";
import { ProgressReporter } from "../progress.js";
import { exitCodeFor, withStopSignals } from "../signals.js";
import { weightsFor } from "../weights.js";

export const BATCH_HELP = `Usage: stylegram batch PHOTO... --style S [--style S2 ...] -o DIR [options]
       stylegram batch --manifest pairs.json -o DIR [options]

Makes every PHOTO in every style S, as DIR/<photo>_<style>.png, in one process: the
weights are loaded once and each style's targets computed once per size. Or the pairs of
a manifest, a JSON list, each with its own options over the flags':
  [{"content": "a.jpg", "style": "b.jpg"},
   {"content": "c.jpg", "style": ["d.jpg", "e.jpg"], "output": "c_de.jpg", "options": {"styleWeight": 1000}}]
(paths relative to the manifest; "output" relative to DIR).

${flagHelp("batch", ["output", "batch", "optimisation", "colour", "objective", "runtime"])}

Resumable: run the same command again after Ctrl-C, a kill or a reboot, and it skips the
finished pictures and goes on with the others from their last snapshot (DIR/.stylegram).
A picture that fails (an unreadable image) is reported and the others go on; the exit
code is 0 only when every picture was made.`;

const BATCH_FLAGS = { ...parseArgsOptions("batch"), help: { type: "boolean", short: "h" } } as const;
export const BATCH_FLAG_NAMES = Object.keys(BATCH_FLAGS);

export async function batchCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(argv, valueFlags(BATCH_FLAGS)),
    options: BATCH_FLAGS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(`${BATCH_HELP}\n`);
    return 0;
  }
  return withFlagErrors(values, () => run(values, positionals));
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

interface ManifestEntry {
  content?: unknown;
  style?: unknown;
  styles?: unknown;
  output?: unknown;
  options?: unknown;
}

/** The pairs of a manifest file, each checked, with paths made relative to it. */
export function readManifest(file: string, dir: string): BatchItem[] {
  let entries: unknown;
  try {
    entries = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    const why = (e as { code?: string }).code === "ENOENT" ? "it does not exist" : (e as Error).message;
    throw new UsageError(`cannot read the manifest ${file}: ${why}`, { option: "manifest" });
  }
  if (!Array.isArray(entries))
    throw new UsageError(
      `the manifest ${file} must be a JSON list of pairs: [{"content": "a.jpg", "style": "b.jpg"}, ...]`,
      {
        option: "manifest",
      },
    );
  const base = path.dirname(path.resolve(file));
  return entries.map((e: ManifestEntry, i) => {
    const where = `${file}, pair ${i + 1}`;
    const styles = e.styles ?? e.style;
    const list = typeof styles === "string" ? [styles] : styles;
    if (
      typeof e.content !== "string" ||
      !Array.isArray(list) ||
      list.length === 0 ||
      !list.every((s) => typeof s === "string")
    )
      throw new UsageError(`${where}: give "content" (a photo) and "style" (a painting, or a list of them)`, {
        option: "manifest",
      });
    const content = path.resolve(base, e.content);
    const styleFiles = (list as string[]).map((s) => path.resolve(base, s));
    const options = (e.options ?? {}) as Record<string, unknown>;
    if (typeof options !== "object" || Array.isArray(options))
      throw new UsageError(`${where}: "options" must be an object of stylize() options`, {
        option: "manifest",
      });
    // Each pair's options checked as stylize() checks them, before any work.
    try {
      validateStylizeOptions({ ...options, content, styles: styleFiles });
    } catch (err) {
      if (err instanceof StylegramError)
        throw new UsageError(`${where}: ${err.message}`, { option: "manifest" });
      throw err;
    }
    const stem = (f: string) => path.basename(f, path.extname(f));
    const output =
      typeof e.output === "string"
        ? path.resolve(dir, e.output)
        : path.join(dir, `${stem(content)}_${styleFiles.map(stem).join("+")}.png`);
    return { content, styles: styleFiles, output, options };
  });
}

async function run(values: Values, photos: string[]): Promise<number> {
  const flags = optionsFromFlags("batch", values) as {
    output?: string;
    force?: boolean;
    printEvery?: number;
    fetch?: boolean;
    weights?: string;
    styles?: string[];
    manifest?: string;
  } & Omit<BatchOptions, "items">;
  const {
    output: dir,
    force = false,
    printEvery,
    fetch,
    weights: weightsPath,
    styles = [],
    manifest,
    ...library
  } = flags;
  if (!dir) throw new UsageError("give the output folder with -o DIR");
  if (printEvery !== undefined) checkOption("printEvery", printEvery);
  if (photos.length > 0 && styles.length === 0)
    throw new UsageError("give at least one --style FILE for the photos", { option: "styles" });
  if (manifest === undefined && (photos.length === 0 || styles.length === 0))
    throw new UsageError("give photos and at least one --style FILE, or a --manifest FILE of pairs");
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory())
    throw new UsageError(`-o ${dir} is a file: give a folder for the pictures`);
  fs.mkdirSync(dir, { recursive: true });
  const items = [
    ...crossItems(photos, styles, dir),
    ...(manifest === undefined ? [] : readManifest(manifest, dir)),
  ];

  const progress = new ProgressReporter(process.stderr, printEvery ?? DEFAULTS.printEvery);
  const skipped: string[] = [];
  const onItem = (r: ItemReport) => {
    const name = path.basename(r.item.output);
    if (r.status === "skipped") skipped.push(name);
    else if (r.status === "done")
      progress.line(
        `wrote ${r.item.output}${r.resumedAt === undefined ? "" : ` (went on from its snapshot at iteration ${r.resumedAt})`}${r.seconds === undefined ? "" : `, ${r.seconds.toFixed(1)} s`}`,
      );
    else if (r.status === "failed")
      progress.line(
        `failed: ${name} (${r.item.content} in ${r.item.styles.join(", ")}): ${r.error?.message}`,
      );
  };
  const { value: result, stoppedBy } = await withStopSignals(
    (sig) => {
      progress.end();
      process.stderr.write(
        `stopping (${sig === "SIGINT" ? "Ctrl-C" : sig}): saving the pictures in progress as snapshots; the same command goes on (again to quit at once)\n`,
      );
    },
    async (signal) => {
      const weights = await weightsFor(weightsPath, fetch === true, signal);
      return stylizeBatch({
        ...library,
        items,
        force,
        weights,
        signal,
        onStage: (s) => {
          if (s.stage === "notice") progress.line(`note: ${s.message}`);
        },
        onProgress: (p) => progress.update(p),
        onItem,
      });
    },
  );
  progress.end();
  if (skipped.length > 0)
    process.stderr.write(`skipped ${skipped.length} finished before: ${skipped.join(", ")}\n`);
  const made = `${result.done} made, ${result.skipped} finished before, ${result.failed.length} failed`;
  if (result.stopped) {
    process.stderr.write(`stopped (${made}): run the same command to go on\n`);
    return exitCodeFor(stoppedBy, 130);
  }
  process.stderr.write(`${made} (of ${items.length} in ${dir})\n`);
  return result.failed.length > 0 ? 1 : 0;
}
