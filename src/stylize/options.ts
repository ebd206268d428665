import { message, opt, UsageError } from "../errors.js";
import type { RgbImage } from "../image/image.js";
import type { Mask } from "../image/masks.js";
import type { ImageSource } from "../image/source.js";
import type { VggWeights } from "../network/weights.js";
import type { ObjectiveOptions } from "../objective/options.js";
import type { TargetCache } from "../objective/targets.js";
import { checkPresent, knownKeys, namesIn } from "../options/check.js";
import { DEFAULTS } from "../options/defaults.js";
import { COLORS, PRECISIONS } from "../options/registry.js";
import type { Device, DeviceRequest } from "../runtime/device.js";
import { finiteNumber, wholeNumber } from "../validate.js";

/** The defaults of stylize() (DEFAULTS, from the option registry; this name is kept for callers). */
export const STYLIZE_DEFAULTS = DEFAULTS;

export type Init = "noise" | "content" | "style" | { image: ImageSource };

/**
 * Whose colours the picture has: "style" the painting's (the classic transfer), "luminance" the photo's,
 * only the luminance being stylized, "histogram" the photo's, by recolouring the painting first.
 */
export type Colors = (typeof COLORS)[number];
export type PrecisionRequest = (typeof PRECISIONS)[number];
export { COLORS, PRECISIONS };

export interface Progress {
  /** 1-based evaluation count; an iteration is one evaluation of the loss and its gradient. */
  iteration: number;
  /** Evaluations of the whole run (every scale). */
  iterations: number;
  /** The weighted loss at this evaluation: content, style and TV terms together. */
  loss: number;
  /** @deprecated The same as `loss` (the name read as a count next to `iterations`). */
  total: number;
  content: Record<string, number>;
  style: Record<string, number>;
  tv: number;
  /** The temporal term (video), when the run has one. */
  temporal?: number;
  /** Seconds since the optimisation started (building the objective of each scale included). */
  seconds: number;
  /**
   * Where this iteration's time went, in seconds: the objective's evaluation, the optimiser's step,
   * and the rest (the callbacks of the iteration before: progress, snapshots).
   */
  timing: { objective: number; optimizer: number; other: number };
  /** 1-based index of the scale being optimised, of `scales` (1 of 1 without multi-scale). */
  scale: number;
  scales: number;
  width: number;
  height: number;
  /** Where it computes. */
  device: Device;
  /** The arithmetic of this evaluation ("int8" or "fp32"). */
  precision: "fp32" | "int8";
  /**
   * Seconds left: this scale's time per evaluation, scaled to the later scales by their pixels (and
   * tiles): coarse to fine, a later evaluation costs several times an earlier one.
   */
  etaSeconds: number;
}

/** A step of the set-up before the first iteration, so that no run sits silent. */
export interface Stage {
  /** "notice": something the user should know about the inputs (a mask resized, a part of the photo without style). */
  stage: "weights" | "device" | "objective" | "notice";
  /** For "notice": what to tell the user, as a sentence. */
  message?: string;
  /** For "device": where the run computes, and why (auto's choice, or "asked for"). */
  device?: Device;
  /** For "device": the arithmetic of the run. */
  precision?: PrecisionRequest;
  reason?: string;
  /** For "objective": the scale being prepared (1-based, of `scales`) and its size. */
  scale?: number;
  scales?: number;
  width?: number;
  height?: number;
  /** For "objective": the owned tile edge when this scale is evaluated tile by tile (else undefined). */
  tile?: number;
  /** For "objective": the estimated peak memory of this scale, and what was available at the start. */
  estimatedBytes?: number;
  availableBytes?: number;
}

export interface StylizeOptions extends ObjectiveOptions {
  content: ImageSource;
  /** One or more style images; blended by `styleBlend`. */
  styles: readonly ImageSource[];
  /** Long edge of the output in pixels (default 512). */
  size?: number;
  /** Style images are resized to size x styleScale on their long edge (default 1): smaller copies smaller strokes. */
  styleScale?: number;
  /** Where the optimisation starts (default "content"). */
  init?: Init;
  /** Seed of the noise for init "noise" (default 0). */
  seed?: number;
  /** Number of loss evaluations (default 300); with `scales`, one count for every scale or a list. */
  iterations?: number | readonly number[];
  /**
   * Coarse-to-fine: long edges optimised in turn, each starting from the previous
   * result upsampled; the last is the output size. Default: just `size`.
   */
  scales?: readonly number[];
  optimizer?: "lbfgs" | "adam";
  /** Step size: L-BFGS's without line search (default 1), Adam's in pixel units (default 10). */
  learningRate?: number;
  /** L-BFGS history size (default 100). */
  historySize?: number;
  /** L-BFGS line search (default none). */
  lineSearch?: "none" | "strong-wolfe";
  /**
   * How L-BFGS moves the picture: "none" (default), pixel by pixel, or "pyramid", through a blur
   * pyramid (a linear change of variables: src/stylize/precondition.ts), which needs bounds "none".
   */
  precondition?: "pyramid" | "none";
  /**
   * "pixels" (default): every L-BFGS and Adam step keeps each pixel within 0..255 (projected steps),
   * so the picture saved is the one optimised; "none": unbounded, clipped only when saved.
   */
  bounds?: "pixels" | "none";
  /**
   * Stops a scale before its iterations once the loss has fallen by less than this fraction over the
   * last 20 evaluations (default 0.001); 0 runs every iteration. `iterations` is the most.
   */
  stopBelow?: number;
  /**
   * Whose colours the picture has (default "style", the painting's). "luminance": the photo's colours
   * with the stylized luminance (the stylized picture's luminance with the photo's chroma; works best
   * when the photo's and the painting's luminance histograms are alike). "histogram": the painting is
   * recoloured first so that its mean colour and colour covariance are the photo's (Gatys et al.'s
   * colour histogram matching), so the picture keeps the photo's colours and takes the painting's strokes.
   */
  colors?: Colors;
  /** Keep the content's colours: the same as colors "luminance" (kept for compatibility). */
  originalColors?: boolean;
  /**
   * Styles by region: one mask per style image (a file or an image; white where that style applies,
   * black elsewhere, grey in part), drawn over the photo and resized to it. Each style is matched
   * where its mask is (guided Gram matrices), instead of all of them blended everywhere. Where no mask
   * is white the picture keeps the photo's content with no style; where masks overlap, each of their
   * styles applies. With masks, `styleBlend` weighs the regions' style terms (equal by default).
   */
  masks?: readonly ImageSource[];
  /**
   * Per style image, the part of it to take the style from (a mask over the style image, white where
   * to take it), or null for the whole image.
   */
  styleMasks?: readonly (ImageSource | null)[];
  /**
   * A video frame's temporal term (Ruder et al.): `target`, the previous stylized frame warped to this
   * one, and `certainty`, each pixel's weight (0 where the flow is unreliable), both at the output
   * size (resized for coarser scales), weighted by `temporalWeight`. See src/video/ for how they are made.
   */
  temporal?: { target: RgbImage; certainty: Mask };
  /** Style Gram matrices shared by many calls (a batch, a video): each computed once per image and size. */
  targetCache?: TargetCache;
  /** Weights folder, loaded weights, or undefined for $STYLEGRAM_WEIGHTS. */
  weights?: string | VggWeights;
  threads?: number;
  /**
   * Arithmetic of the convolutions: "fp32" (exact), "int8" (about 2.5x faster on a CPU with VNNI or
   * AMX, a little less accurate), or "mixed": int8, then float32 for the last evaluations of each
   * scale, so that the picture is float32's optimum. Default "fp32" on a GPU; see STYLIZE_DEFAULTS.
   */
  precision?: PrecisionRequest;
  /** Where to compute: "cpu", "webgpu" (any GPU, through onnxruntime's WebGPU provider) or "auto" (default). */
  device?: DeviceRequest;
  /** Memory the run may use, in bytes (default: what the system has available); checked before any work. */
  maxMemory?: number;
  /**
   * Evaluate the objective tile by tile, with owned tiles of this edge in pixels (rounded down to a
   * multiple of 16), in memory bounded by the tile, exactly. Default: whole, or in the largest tiles
   * that fit where the whole picture would not fit in memory (or in maxMemory). Float32 only.
   */
  tile?: number;
  /** Called at each set-up step (loading the weights, preparing each scale's objective). */
  onStage?: (s: Stage) => void;
  /** Called after every evaluation. */
  onProgress?: (p: Progress) => void | Promise<void>;
  /** Called with the best image so far every `snapshotEvery` iterations. */
  onSnapshot?: (image: RgbImage, iteration: number) => void | Promise<void>;
  snapshotEvery?: number;
  /** Stops early; stylize() then returns the best image so far. */
  signal?: AbortSignal;
}

export function positiveInteger(name: string, v: number | undefined, fallback: number): number {
  return wholeNumber(name, v ?? fallback, 1);
}

export function positiveNumber(name: string, v: number | undefined, fallback: number): number {
  return finiteNumber(name, v ?? fallback, { above: 0 });
}

/** The keys of stylize()'s options object: the registry's objective, stylize and runtime options. */
const STYLIZE_KEYS = namesIn("objective", "stylize", "runtime");

/**
 * Checks every option of stylize() against the option registry, naming the option; the objective's
 * own options are checked again where they are resolved. JavaScript callers and JSON requests can
 * pass anything, so nothing here trusts the types.
 */
export function validateStylizeOptions(o: StylizeOptions): void {
  if (typeof o !== "object" || o === null) throw new UsageError("stylize() takes an options object");
  knownKeys("stylize()", o, STYLIZE_KEYS);
  if (o.content === undefined)
    throw new UsageError("content is required: a photo's file path or an RgbImage", { option: "content" });
  checkPresent(o as unknown as Record<string, unknown>, STYLIZE_KEYS);
  if (o.originalColors === true && o.colors !== undefined && o.colors !== "luminance") {
    throw new UsageError(
      message`${opt("originalColors")} is the same as ${opt("colors", "luminance")} and cannot go with ${opt("colors", o.colors)}: give only one of them`,
      { option: "originalColors" },
    );
  }
  const onePerStyle = (name: string, v: readonly unknown[]) => {
    if (v.length !== o.styles.length)
      throw new UsageError(
        message`${v.length} ${opt(name)} for ${o.styles.length} style image${o.styles.length === 1 ? "" : "s"}: give ${opt(name)} once per style image, in their order`,
        { option: name },
      );
  };
  if (o.masks !== undefined) onePerStyle("masks", o.masks);
  if (o.styleMasks !== undefined) onePerStyle("styleMasks", o.styleMasks);
}
