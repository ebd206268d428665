import fs from "node:fs";
import path from "node:path";
import { StoppedBeforeStartError, StylegramError, UsageError } from "../errors.js";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { reserveOutput } from "../fsutil/results.js";
import { encodeImage, formatForPath, imageFileSize } from "../image/io.js";
import { resolveWeights } from "../models/resolve.js";
import { TargetCache } from "../objective/targets.js";
import { checkPresent, knownKeys, namesIn } from "../options/check.js";
import { defaultThreads } from "../runtime/session.js";
import type { Progress, StylizeOptions } from "../stylize/options.js";
import { planScales, stylize } from "../stylize/stylize.js";

/**
 * stylizeBatch(): many pictures in one process, each a stylize() run, with the weights loaded once
 * and each style's Gram matrices computed once per size (a TargetCache). Resumable: a finished
 * picture is a file (written whole, by rename), and is skipped; a picture being made saves a snapshot
 * now and then into DIR/.stylegram/, from which the next run goes on. A picture that fails is
 * reported and the others go on.
 */

export interface BatchItem {
  content: string;
  styles: readonly string[];
  /** Where the picture goes. */
  output: string;
  /** This picture's own stylize() options, over the batch's. */
  options?: Partial<Omit<StylizeOptions, "content" | "styles">>;
}

export interface BatchOptions
  extends Omit<
    StylizeOptions,
    | "content"
    | "styles"
    | "onProgress"
    | "onSnapshot"
    | "snapshotEvery"
    | "init"
    | "masks"
    | "styleMasks"
    | "targetCache"
  > {
  items: readonly BatchItem[];
  /** Pictures made at once, the cores split between them (default 1). */
  concurrency?: number;
  /** Make every picture again, even the finished ones. */
  force?: boolean;
  onProgress?: (p: BatchProgress) => void;
  /** Once per picture: finished, skipped (finished before) or failed. */
  onItem?: (r: ItemReport) => void;
}

export interface BatchProgress extends Progress {
  /** The picture this evaluation belongs to (its output's name). */
  picture: string;
}

export interface ItemReport {
  item: BatchItem;
  status: "done" | "skipped" | "failed" | "stopped";
  /** Why it failed. */
  error?: StylegramError | Error;
  /** It went on from a snapshot at this iteration. */
  resumedAt?: number;
  seconds?: number;
}

export interface BatchResult {
  done: number;
  skipped: number;
  failed: ItemReport[];
  stopped: boolean;
}

/** The picture of a photo in a style: DIR/<photo>_<style>.png. */
export function batchOutput(dir: string, content: string, style: string): string {
  const stem = (f: string) => path.basename(f, path.extname(f));
  return path.join(dir, `${stem(content)}_${stem(style)}.png`);
}

/** Every photo in every style. */
export function crossItems(photos: readonly string[], styles: readonly string[], dir: string): BatchItem[] {
  return photos.flatMap((content) =>
    styles.map((s) => ({ content, styles: [s], output: batchOutput(dir, content, s) })),
  );
}

/** The folder of a batch's snapshots: DIR/.stylegram. */
const stateDir = (output: string) => path.join(path.dirname(path.resolve(output)), ".stylegram");
const snapshotOf = (output: string) => path.join(stateDir(output), `${path.basename(output)}.snapshot.png`);
const stateOf = (output: string) => path.join(stateDir(output), `${path.basename(output)}.json`);

interface SnapshotState {
  /** What decides the picture: a snapshot made with other settings is not used. */
  settings: string;
  iteration: number;
}

function settingsOf(item: BatchItem, options: Partial<StylizeOptions>): string {
  const { signal, onStage, weights, threads, device, ...rest } = options;
  void [signal, onStage, threads, device];
  return JSON.stringify({
    ...rest,
    content: path.resolve(item.content),
    styles: item.styles.map((s) => path.resolve(s)),
    weights: typeof weights === "string" ? path.resolve(weights) : undefined,
  });
}

function readState(output: string, settings: string): SnapshotState | undefined {
  try {
    const state = JSON.parse(fs.readFileSync(stateOf(output), "utf8")) as SnapshotState;
    return state.settings === settings && fs.existsSync(snapshotOf(output)) ? state : undefined;
  } catch {
    return undefined;
  }
}

const BATCH_KEYS = [
  ...namesIn("objective", "stylize", "runtime", "batch").filter(
    (k) =>
      ![
        "content",
        "styles",
        "onSnapshot",
        "snapshotEvery",
        "init",
        "masks",
        "styleMasks",
        "targetCache",
        "manifest",
      ].includes(k),
  ),
  "items",
  "force",
  "onItem",
];

/** Refuses two items that would write the same file (photos of one name in two folders, say). */
function checkItems(items: readonly BatchItem[]): void {
  if (!Array.isArray(items) || items.length === 0)
    throw new UsageError("give at least one photo and one style", { option: "items" });
  const seen = new Map<string, BatchItem>();
  for (const item of items) {
    const key = path.resolve(item.output);
    const other = seen.get(key);
    if (other)
      throw new UsageError(
        `${other.content} in ${other.styles.join(", ")} and ${item.content} in ${item.styles.join(", ")} would both be written to ${item.output}: rename one of the files, or give pairs in a manifest with their own "output"`,
      );
    seen.set(key, item);
    formatForPath(item.output);
  }
}

export async function stylizeBatch(o: BatchOptions): Promise<BatchResult> {
  if (typeof o !== "object" || o === null) throw new UsageError("stylizeBatch() takes an options object");
  knownKeys("stylizeBatch()", o, BATCH_KEYS);
  checkPresent(o as unknown as Record<string, unknown>, namesIn("objective", "stylize", "runtime", "batch"));
  checkItems(o.items);
  const { items, concurrency = 1, force = false, onProgress, onItem, ...common } = o;
  const stopped = () => o.signal?.aborted === true;
  const weights = await resolveWeights(common.weights);
  const cache = new TargetCache();
  const threads = Math.max(
    1,
    Math.floor((common.threads ?? defaultThreads()) / Math.min(concurrency, items.length)),
  );

  // What each picture costs, for one bar over the batch: its evaluations, less a snapshot's.
  const plans = items.map((item) => {
    const options = { ...common, ...item.options };
    const settings = settingsOf(item, options);
    const finished = !force && fs.existsSync(item.output);
    const state = finished || force ? undefined : readState(item.output, settings);
    let evaluations = 0;
    try {
      evaluations = planScales(options).reduce((n, s) => n + s.iterations, 0);
    } catch {
      // A bad option fails this picture when it runs, with its message.
    }
    return { item, options, settings, finished, state, evaluations };
  });
  let remaining = plans.reduce((n, p) => n + (p.finished ? 0 : p.evaluations - (p.state?.iteration ?? 0)), 0);
  let done = 0;
  const started = performance.now();
  const result: BatchResult = { done: 0, skipped: 0, failed: [], stopped: false };

  const runOne = async (plan: (typeof plans)[number]): Promise<void> => {
    const { item, options, settings, state } = plan;
    if (plan.finished) {
      result.skipped++;
      onItem?.({ item, status: "skipped" });
      return;
    }
    const release = reserveOutput(item.output);
    const itemStarted = performance.now();
    let counted = 0;
    try {
      for (const f of [item.content, ...item.styles]) await imageFileSize(f);
      fs.mkdirSync(stateDir(item.output), { recursive: true });
      const total = plan.evaluations;
      const from = state?.iteration ?? 0;
      const snapshotEvery = Math.max(1, Math.ceil(total / 10));
      const steps = planScales(options);
      const r = await stylize({
        ...options,
        content: item.content,
        styles: item.styles,
        weights,
        threads: options.threads ?? threads,
        targetCache: cache,
        // From a snapshot: the rest of the evaluations at the output size, starting there.
        ...(state
          ? {
              init: { image: snapshotOf(item.output) },
              scales: [steps.at(-1)?.size as number],
              iterations: total - from,
            }
          : {}),
        snapshotEvery,
        onSnapshot: async (img, iteration) => {
          writeFileAtomic(snapshotOf(item.output), await encodeImage(img, "png"));
          const s: SnapshotState = { settings, iteration: from + iteration };
          writeFileAtomic(stateOf(item.output), new TextEncoder().encode(JSON.stringify(s)));
        },
        onProgress: (p) => {
          counted = p.iteration;
          const doneNow = done + p.iteration;
          const elapsed = (performance.now() - started) / 1000;
          onProgress?.({
            ...p,
            picture: path.basename(item.output),
            iteration: doneNow,
            iterations: doneNow + remaining - p.iteration,
            seconds: elapsed,
            etaSeconds: (elapsed / doneNow) * (remaining - p.iteration),
          });
        },
      });
      if (r.reason === "aborted") {
        // Not finished: its latest snapshot is where the next run goes on.
        writeFileAtomic(snapshotOf(item.output), await encodeImage(r.image, "png"));
        const s: SnapshotState = { settings, iteration: from + r.iterations };
        writeFileAtomic(stateOf(item.output), new TextEncoder().encode(JSON.stringify(s)));
        onItem?.({ item, status: "stopped" });
        return;
      }
      writeFileAtomic(item.output, await encodeImage(r.image, formatForPath(item.output)), {
        overwrite: force,
      });
      for (const f of [snapshotOf(item.output), stateOf(item.output)]) fs.rmSync(f, { force: true });
      result.done++;
      onItem?.({
        item,
        status: "done",
        ...(state ? { resumedAt: state.iteration } : {}),
        seconds: (performance.now() - itemStarted) / 1000,
      });
    } catch (e) {
      if (e instanceof StoppedBeforeStartError) {
        onItem?.({ item, status: "stopped" });
        return;
      }
      // A bug is not a picture's failure: it stops the batch as it would one run.
      if (!(e instanceof StylegramError)) throw e;
      const report: ItemReport = { item, status: "failed", error: e };
      result.failed.push(report);
      onItem?.(report);
    } finally {
      done += counted;
      remaining -= Math.max(counted, plan.evaluations - (state?.iteration ?? 0));
      release();
    }
  };

  // A pool of `concurrency` workers over the items, in order.
  let next = 0;
  const worker = async () => {
    while (next < plans.length && !stopped()) await runOne(plans[next++] as (typeof plans)[number]);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, plans.length) }, worker));
  // The snapshots' folders go once nothing is left in them.
  for (const dir of new Set(items.map((i) => stateDir(i.output)))) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // Not empty (a picture to go on with), or never made.
    }
  }
  result.stopped = stopped();
  return result;
}
