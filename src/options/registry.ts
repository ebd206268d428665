import { type TSchema, Type } from "@sinclair/typebox";
import { UsageError } from "../errors.js";
import { describeValue, functionValue, imageValue, listOf, nonEmptyString } from "../validate.js";

/**
 * The one table of options. Each entry holds everything known of one option: its library name, its
 * CLI flag, its type with bounds or allowed values (a TypeBox schema, which is also the JSON schema the
 * server serves), its default, its one line of help. Derived from it: the library's checks
 * (options/check.ts), the CLI's parser, --help and shell completion (cli/options.ts), the server's
 * schema (server/options.ts, with its own caps), and docs/options.md (npm run docs:options).
 */

/**
 * Where an option belongs: the objective, stylize() itself, the runtime, stylizeVideo() or
 * stylizeBatch() (beside stylize()'s own), or only the CLI.
 */
export type Scope = "objective" | "stylize" | "runtime" | "video" | "batch" | "cli";
/** The commands whose flags include it. */
export type Command = "stylize" | "loss" | "batch" | "video";
/** The sections of --help and docs/options.md. */
export type Group = "output" | "optimisation" | "colour" | "objective" | "video" | "batch" | "runtime";

export const GROUP_TITLES: Record<Group, string> = {
  output: "Output and size",
  optimisation: "Optimisation",
  colour: 'Colour and regions (Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer")',
  objective: "Objective",
  video: 'Video (Ruder, Dosovitskiy and Brox, "Artistic style transfer for videos")',
  batch: "Batch",
  runtime: "Runtime",
};

export interface OptionSpec {
  name: string;
  /** The flag without its dashes; default: the name in kebab case; null: no flag (callbacks, objects). */
  flag?: string | null;
  short?: string;
  /** Type, bounds and allowed values of a JSON value: the library's check and the server's schema. */
  schema?: TSchema;
  /** A check for what a JSON schema cannot say (an image, a function, an AbortSignal); throws UsageError. */
  check?: (name: string, value: unknown) => void;
  /** The default as documented; `defaultText` where it depends on something else. */
  default?: unknown;
  defaultText?: string;
  help: string;
  /** Further lines of help, for --help and the docs. */
  more?: string;
  /** The value's placeholder in --help. */
  arg?: string;
  group: Group;
  scope: Scope;
  commands: readonly Command[];
  /** How the CLI reads it: repeated flags, or a parser of its own for the flag's text. */
  cli?: {
    multiple?: boolean;
    parse?: (text: string) => unknown;
    choices?: readonly string[];
    /** What the flag's text must be, where it is not the value itself ("a size such as 8G"). */
    expects?: string;
  };
  /** The web API's own caps, layered on the schema; undefined: not in the API. */
  server?: Record<string, unknown>;
}

export const LIMITS = {
  /** 100000 px would need about a terabyte even in tiles: a larger request is a typo. */
  size: 100_000,
  /** Style images at 1/100 to 10 times the output size: beyond that a few pixels, or more than any memory. */
  styleScale: { min: 0.01, max: 10 },
} as const;

const literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
const weightSchema = Type.Number({ minimum: 0 });
const layerList = Type.Array(Type.String({ minLength: 1 }));
const weightList = Type.Array(Type.Number({ minimum: 0 }));
const serverLayers = { maxItems: 16 };
const serverWeight = { maximum: 1e12 };

export const POOLINGS = ["max", "avg"] as const;
export const OPTIMIZERS = ["lbfgs", "adam"] as const;
export const LINE_SEARCHES = ["none", "strong-wolfe"] as const;
export const INITS = ["noise", "content", "style"] as const;
export const COLORS = ["style", "luminance", "histogram"] as const;
export const PRECISIONS = ["fp32", "int8", "mixed"] as const;
export const DEVICES = ["cpu", "webgpu", "auto"] as const;
export const PRECONDITIONERS = ["pyramid", "none"] as const;
export const BOUNDS = ["pixels", "none"] as const;

const stylizeOnly: readonly Command[] = ["stylize"];
/** The commands that make pictures: one, many, or a video's frames. */
const pictures: readonly Command[] = ["stylize", "batch", "video"];
/** The objective's options: every command that builds it. */
const all: readonly Command[] = ["stylize", "loss", "batch", "video"];
const batchOnly: readonly Command[] = ["batch"];
const videoOnly: readonly Command[] = ["video"];

/** Every option, in the order --help lists them. */
export const OPTIONS = [
  // Output and size
  {
    name: "output",
    short: "o",
    help: "the result (required): a picture, format from the extension (.png .jpg .webp, lossless .tif); batch: a folder; video: a video (.mp4 .webm .mkv ...); never one of the inputs",
    arg: "FILE",
    group: "output",
    scope: "cli",
    commands: pictures,
  },
  {
    name: "force",
    short: "f",
    schema: Type.Boolean(),
    default: false,
    help: "overwrite OUT, its snapshots and the log if they exist; batch and video: start again instead of resuming",
    group: "output",
    scope: "cli",
    commands: all,
  },
  {
    name: "size",
    schema: Type.Integer({ minimum: 1, maximum: LIMITS.size }),
    default: 512,
    help: "long edge of the output in pixels (smaller photos are upscaled)",
    more: "above 1024, coarse to fine by default: 512, 1024, ... up to N, each finer scale with 5x fewer iterations",
    arg: "N",
    group: "output",
    scope: "stylize",
    commands: pictures,
    server: { maximum: 4096 },
  },
  {
    name: "styleScale",
    schema: Type.Number({ minimum: LIMITS.styleScale.min, maximum: LIMITS.styleScale.max }),
    default: 1,
    help: "style images at N x the output size: smaller values copy smaller strokes",
    arg: "N",
    group: "output",
    scope: "stylize",
    commands: pictures,
    server: { maximum: 8 },
  },
  {
    name: "saveEvery",
    schema: Type.Integer({ minimum: 1 }),
    help: "also save the image every N iterations, as OUT_0100.png etc.",
    arg: "N",
    group: "output",
    scope: "cli",
    commands: stylizeOnly,
  },
  {
    name: "log",
    help: "one JSON line per iteration: {iteration, loss, content, style, tv, seconds, timing: {objective, optimizer, other}, device, precision}",
    arg: "FILE",
    group: "output",
    scope: "cli",
    commands: stylizeOnly,
  },
  {
    name: "printEvery",
    schema: Type.Integer({ minimum: 1 }),
    default: 10,
    help: "without a terminal, print progress every N iterations",
    arg: "N",
    group: "output",
    scope: "cli",
    commands: pictures,
  },
  // Optimisation
  {
    name: "iterations",
    schema: Type.Union([Type.Integer({ minimum: 1 }), Type.Array(Type.Integer({ minimum: 1 }))]),
    default: 300,
    help: "loss evaluations (one forward pass and gradient each); with --scales, one count per scale",
    arg: "N[,N...]",
    group: "optimisation",
    scope: "stylize",
    commands: pictures,
    server: { maximum: 10_000, maxItems: 8, minItems: 1 },
  },
  {
    name: "scales",
    schema: Type.Array(Type.Integer({ minimum: 1, maximum: LIMITS.size })),
    help: "coarse to fine: optimise at these long edges in turn, each from the previous result; the last is the output size",
    more: "e.g. --scales 256,512 --iterations 200,100; --scales N for one scale",
    arg: "S,S,...",
    group: "optimisation",
    scope: "stylize",
    commands: pictures,
    server: { maximum: 4096, maxItems: 8 },
  },
  {
    name: "init",
    schema: literals(INITS),
    check: (name, v) => {
      if (typeof v === "object" && v !== null && !Array.isArray(v) && "image" in v) {
        imageValue(`${name}.image`, (v as { image: unknown }).image);
      } else if (typeof v !== "string" || !(INITS as readonly string[]).includes(v)) {
        throw new UsageError(
          `${name} must be "noise", "content", "style" or { image: FILE }, got ${describeValue(v)}`,
          {
            option: "init",
            expected: '"noise", "content", "style" or an image FILE',
            value: v,
          },
        );
      }
    },
    default: "content",
    help: "where the optimisation starts: noise, content, style, or an image FILE",
    arg: "WHAT",
    group: "optimisation",
    scope: "stylize",
    commands: ["stylize", "batch"],
    cli: {
      choices: [...INITS, "FILE"],
      parse: (t) => ((INITS as readonly string[]).includes(t) ? t : { image: t }),
    },
    server: {},
  },
  {
    name: "seed",
    schema: Type.Integer({ minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
    default: 0,
    help: "seed of the noise for --init noise",
    arg: "N",
    group: "optimisation",
    scope: "stylize",
    commands: pictures,
    server: { minimum: -(2 ** 31), maximum: 2 ** 31 - 1 },
  },
  {
    name: "optimizer",
    schema: literals(OPTIMIZERS),
    default: "lbfgs",
    help: "lbfgs or adam",
    arg: "NAME",
    group: "optimisation",
    scope: "stylize",
    commands: pictures,
    server: {},
  },
  {
    name: "learningRate",
    schema: Type.Number({ exclusiveMinimum: 0 }),
    // By optimizer: L-BFGS's step multiplies its own scaled direction, Adam's is in pixel units.
    default: { lbfgs: 1, adam: 10 },
    defaultText: "1 (L-BFGS), 10 (Adam)",
    help: "step size: L-BFGS's without a line search, Adam's in pixel units (0..255)",
    arg: "N",
    group: "optimisation",
    scope: "stylize",
    commands: pictures,
    server: { maximum: 1e6 },
  },
  {
    name: "historySize",
    flag: "history",
    schema: Type.Integer({ minimum: 1 }),
    default: 100,
    defaultText: "100, fewer when 100 pairs would not fit beside the graph in memory",
    help: "L-BFGS history size",
    arg: "N",
    group: "optimisation",
    scope: "stylize",
    commands: pictures,
    server: { maximum: 1000 },
  },
  {
    name: "lineSearch",
    schema: literals(LINE_SEARCHES),
    default: "none",
    help: "strong-wolfe: L-BFGS with a line search (more evaluations per step, never diverges)",
    arg: "NAME",
    group: "optimisation",
    scope: "stylize",
    commands: pictures,
    server: {},
  },
  {
    name: "stopBelow",
    schema: Type.Number({ minimum: 0, maximum: 1 }),
    default: 0.001,
    help: "stop before --iterations once the loss has fallen by less than this fraction over the last 20 iterations (a change the eye cannot see); 0 runs every iteration",
    arg: "F",
    group: "optimisation",
    scope: "stylize",
    commands: stylizeOnly,
    server: {},
  },
  {
    name: "bounds",
    schema: literals(BOUNDS),
    default: "pixels",
    help: "pixels: every step keeps each pixel within 0..255, so the picture saved is the one optimised; none: unbounded, clipped only when saved (as reference.py does)",
    more: "a run clipped only when saved loses part of its progress there (docs/performance.md)",
    arg: "pixels|none",
    group: "optimisation",
    scope: "stylize",
    commands: stylizeOnly,
    server: {},
  },
  {
    name: "precondition",
    schema: literals(PRECONDITIONERS),
    default: "none",
    help: "L-BFGS moves the picture pixel by pixel (none) or through a blur pyramid (pyramid: large smooth changes take larger steps; needs --bounds none)",
    arg: "pyramid|none",
    group: "optimisation",
    scope: "stylize",
    commands: stylizeOnly,
    server: {},
  },
  {
    name: "precision",
    schema: literals(PRECISIONS),
    default: "fp32",
    help: "int8 runs the convolutions on the CPU's int8 units, about 2.5x faster a step and a few percent less accurate; mixed finishes each scale in float32",
    more: "a GPU runs fp32 only",
    arg: "P",
    group: "optimisation",
    scope: "stylize",
    commands: pictures,
    server: {},
  },
  // Colour and regions
  {
    name: "colors",
    schema: literals(COLORS),
    default: "style",
    help: "whose colours the picture has: style (the painting's), histogram (the photo's: the painting is recoloured first) or luminance (the photo's: only the luminance is stylized)",
    arg: "WHOSE",
    group: "colour",
    scope: "stylize",
    commands: pictures,
    server: {},
  },
  {
    name: "originalColors",
    schema: Type.Boolean(),
    default: false,
    help: "the same as --colors luminance",
    group: "colour",
    scope: "stylize",
    commands: pictures,
    server: {},
  },
  {
    name: "masks",
    flag: "mask",
    check: (name, v) => listOf(name, v, imageValue),
    help: "styles by region: once per style image, in their order; that style applies where its mask (drawn over the photo) is white",
    more: "black in every mask: no style there; under two masks: both styles. With masks, --style-blend weighs the regions' styles",
    arg: "FILE",
    group: "colour",
    scope: "stylize",
    commands: stylizeOnly,
    cli: { multiple: true },
  },
  {
    name: "styleMasks",
    flag: "style-mask",
    check: (name, v) => listOf(name, v, (n, x) => (x === null ? undefined : imageValue(n, x))),
    help: "once per style image: take its style only where this mask over the style image is white (none: all of it)",
    arg: "FILE|none",
    group: "colour",
    scope: "stylize",
    commands: stylizeOnly,
    cli: { multiple: true, parse: (t) => (t === "none" ? null : t) },
  },
  // Objective
  {
    name: "contentLayers",
    schema: layerList,
    default: ["relu4_2"],
    help: "layers matched to the content: names relu1_1..relu5_4 or indices 1..16 (none: no content term)",
    arg: "L,...",
    group: "objective",
    scope: "objective",
    commands: all,
    server: serverLayers,
  },
  {
    name: "contentLayerWeights",
    schema: weightList,
    defaultText: "equal",
    help: "relative weight of each content layer, normalised to sum 1",
    arg: "W,...",
    group: "objective",
    scope: "objective",
    commands: all,
    server: serverLayers,
  },
  {
    name: "styleLayers",
    schema: layerList,
    default: ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
    help: "layers whose Gram matrices are matched to the painting (none: no style term)",
    arg: "L,...",
    group: "objective",
    scope: "objective",
    commands: all,
    server: serverLayers,
  },
  {
    name: "styleLayerWeights",
    schema: weightList,
    defaultText: "equal",
    help: "relative weight of each style layer, normalised to sum 1",
    arg: "W,...",
    group: "objective",
    scope: "objective",
    commands: all,
    server: serverLayers,
  },
  {
    name: "contentWeight",
    schema: weightSchema,
    default: 5,
    help: "weight of the content term",
    arg: "N",
    group: "objective",
    scope: "objective",
    commands: all,
    server: serverWeight,
  },
  {
    name: "styleWeight",
    schema: weightSchema,
    default: 500,
    help: "weight of the style term",
    arg: "N",
    group: "objective",
    scope: "objective",
    commands: all,
    server: serverWeight,
  },
  {
    name: "tvWeight",
    schema: weightSchema,
    default: 1e-3,
    help: "weight of the total-variation (smoothness) term",
    arg: "N",
    group: "objective",
    scope: "objective",
    commands: all,
    server: serverWeight,
  },
  {
    name: "temporalWeight",
    schema: weightSchema,
    default: 50,
    help: "weight of the temporal term: each frame held to the previous result, warped by the optical flow, where the flow is certain; 0: independent frames",
    arg: "N",
    group: "video",
    scope: "objective",
    commands: videoOnly,
  },
  {
    name: "styleBlend",
    schema: weightList,
    defaultText: "equal",
    help: "blend weights of several style images, normalised to sum 1",
    arg: "W,...",
    group: "objective",
    scope: "objective",
    commands: all,
    server: serverLayers,
  },
  {
    name: "pooling",
    schema: literals(POOLINGS),
    default: "max",
    help: "VGG19's pooling: max or avg",
    arg: "max|avg",
    group: "objective",
    scope: "objective",
    commands: all,
    server: {},
  },
  // Video
  {
    name: "temporalFrames",
    schema: Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), { minItems: 1, maxItems: 8 }),
    default: [1],
    help: "the earlier frames each frame is held to: 1 the previous one (short-term), e.g. 1,2,4 long-term too (each pixel to the latest frame where it is certain)",
    arg: "J,J,...",
    group: "video",
    scope: "video",
    commands: videoOnly,
  },
  {
    name: "frameIterations",
    schema: Type.Integer({ minimum: 1 }),
    defaultText: "a third of --iterations (of the last scale's), at least 1",
    help: "evaluations for each frame after the first, which starts from the previous result warped and so needs fewer",
    arg: "N",
    group: "video",
    scope: "video",
    commands: videoOnly,
  },
  {
    name: "frames",
    schema: Type.Integer({ minimum: 1 }),
    defaultText: "all",
    help: "stylize only the first N frames (and as much of the audio)",
    arg: "N",
    group: "video",
    scope: "video",
    commands: videoOnly,
  },
  // Batch
  {
    name: "manifest",
    help: 'a JSON file of pairs instead of (or beside) PHOTO... --style S: [{"content": "a.jpg", "style": "b.jpg", "options": {"styleWeight": 1000}}, ...]; paths relative to the file',
    arg: "FILE",
    group: "batch",
    scope: "cli",
    commands: batchOnly,
  },
  {
    name: "concurrency",
    schema: Type.Integer({ minimum: 1, maximum: 256 }),
    default: 1,
    help: "pictures made at once, the cores split between them",
    arg: "N",
    group: "batch",
    scope: "batch",
    commands: batchOnly,
  },
  // Runtime
  {
    name: "weights",
    check: (name, v) => {
      if (typeof v === "string") nonEmptyString(name, v);
      else if (typeof v !== "object" || v === null || Array.isArray(v))
        throw new UsageError(`${name} must be a weights path or loaded VggWeights`, { option: "weights" });
    },
    defaultText: "$STYLEGRAM_WEIGHTS, else the cache of 'stylegram models fetch'",
    help: "VGG19 weights: a folder, a Keras .h5 or a .safetensors file",
    arg: "PATH",
    group: "runtime",
    scope: "runtime",
    commands: all,
  },
  {
    name: "fetch",
    schema: Type.Boolean(),
    default: false,
    help: "download the weights into the cache first if they are missing",
    group: "runtime",
    scope: "cli",
    commands: all,
  },
  {
    name: "threads",
    schema: Type.Integer({ minimum: 1 }),
    defaultText: "all cores",
    help: "compute threads (more than the cores only slows onnxruntime down)",
    arg: "N",
    group: "runtime",
    scope: "runtime",
    commands: all,
  },
  {
    name: "device",
    schema: literals(DEVICES),
    default: "auto",
    help: "where to compute: auto takes a real GPU through onnxruntime's WebGPU provider when there is one, else the CPU",
    arg: "cpu|webgpu|auto",
    group: "runtime",
    scope: "runtime",
    commands: all,
    server: {},
  },
  {
    name: "maxMemory",
    schema: Type.Number({ exclusiveMinimum: 0 }),
    defaultText: "what is available",
    help: "memory the run may use, e.g. 8G or 500M; a run that would not fit stops at once and names the largest --size that does",
    arg: "SIZE",
    group: "runtime",
    scope: "stylize",
    commands: pictures,
    cli: { parse: parseBytes, expects: "a size such as 8G or 500M" },
  },
  {
    name: "tile",
    schema: Type.Integer({ minimum: 16 }),
    defaultText: "whole, or tiles when memory needs them",
    help: "evaluate in tiles of N px (a multiple of 16): the same numbers in memory bounded by the tile",
    arg: "N",
    group: "runtime",
    scope: "runtime",
    commands: all,
  },
  // Library only: images, callbacks and signals
  {
    name: "content",
    flag: null,
    check: imageValue,
    help: "the photo: a file path or an RgbImage",
    group: "output",
    scope: "stylize",
    commands: [],
  },
  {
    name: "styles",
    // stylegram CONTENT STYLE... takes them as words; batch and video by flag.
    flag: "style",
    check: (name, v) => {
      listOf(name, v, imageValue);
      if ((v as unknown[]).length === 0)
        throw new UsageError(`${name} must name at least one style image`, { option: "styles" });
    },
    help: "a painting: batch makes every photo in every --style; video blends several, as stylegram does",
    arg: "FILE",
    group: "output",
    scope: "stylize",
    commands: ["batch", "video"],
    cli: { multiple: true },
  },
  {
    name: "temporal",
    flag: null,
    check: temporalValue,
    help: "a video frame's temporal term: { target: the previous result warped to this frame (an RgbImage), certainty: a Mask of each pixel's weight }, at the output size",
    group: "video",
    scope: "stylize",
    commands: [],
  },
  {
    name: "targetCache",
    flag: null,
    check: (name, v) => {
      if (typeof v !== "object" || v === null || typeof (v as { get?: unknown }).get !== "function")
        throw new UsageError(`${name} must be a TargetCache (new TargetCache())`, { option: "targetCache" });
    },
    help: "a TargetCache shared by many stylize() calls: each style image's Gram matrices computed once per size",
    group: "runtime",
    scope: "stylize",
    commands: [],
  },
  ...(["onStage", "onProgress", "onSnapshot"] as const).map((name) => ({
    name,
    flag: null,
    check: functionValue,
    help:
      name === "onStage"
        ? "called at each set-up step"
        : name === "onProgress"
          ? "called after every evaluation"
          : "called with the best image so far every snapshotEvery iterations",
    group: "runtime" as const,
    scope: "stylize" as const,
    commands: [] as readonly Command[],
  })),
  {
    name: "snapshotEvery",
    flag: null,
    schema: Type.Integer({ minimum: 1 }),
    help: "how often onSnapshot is called",
    group: "runtime",
    scope: "stylize",
    commands: [],
  },
  {
    name: "signal",
    flag: null,
    check: (name, v) => {
      if (!(v instanceof AbortSignal))
        throw new UsageError(`${name} must be an AbortSignal (from an AbortController)`, {
          option: "signal",
        });
    },
    help: "an AbortSignal: stops early, returning the best image so far",
    group: "runtime",
    scope: "stylize",
    commands: [],
  },
] as const satisfies readonly OptionSpec[];

export type OptionName = (typeof OPTIONS)[number]["name"];

/** A temporal target: { target: RgbImage, certainty: { width, height, data: Float32Array } } of one size. */
function temporalValue(name: string, v: unknown): void {
  const t = v as { target?: unknown; certainty?: { width?: unknown; height?: unknown; data?: unknown } };
  if (typeof t !== "object" || t === null || typeof t.target !== "object")
    throw new UsageError(`${name} must be { target: RgbImage, certainty: Mask }, got ${describeValue(v)}`, {
      option: "temporal",
    });
  imageValue(`${name}.target`, t.target);
  const target = t.target as { width: number; height: number };
  const c = t.certainty;
  if (
    typeof c !== "object" ||
    c === null ||
    c.width !== target.width ||
    c.height !== target.height ||
    !(c.data instanceof Float32Array) ||
    c.data.length !== target.width * target.height
  )
    throw new UsageError(
      `${name}.certainty must be a Mask { width, height, data: Float32Array } of the target's size ${target.width}x${target.height}`,
      { option: "temporal" },
    );
}

const byName = new Map<string, OptionSpec>(OPTIONS.map((o) => [o.name, o as OptionSpec]));

export function optionSpec(name: string): OptionSpec {
  const spec = byName.get(name);
  if (!spec) throw new Error(`no option ${name} in the registry`);
  return spec;
}

/** The flag of an option, as typed: styleWeight -> --style-weight; undefined for a library-only option. */
export function flagOf(name: string): string | undefined {
  const spec = byName.get(name);
  if (spec?.flag === null) return undefined;
  return `--${spec?.flag ?? name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The option a flag sets, if any. */
export function optionOfFlag(flag: string): string | undefined {
  return OPTIONS.find((o) => flagOf(o.name) === flag)?.name;
}

/** The default of an option as documented (a number, a list, a name). */
export function defaultOf<T = unknown>(name: string): T {
  return optionSpec(name).default as T;
}

/** "8G", "500M", "1.5GB", "2000000000": bytes; NaN for anything else (the check names the option). */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(text);
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m?.[2] ?? "").toLowerCase()];
  return m && unit ? Number(m[1]) * unit : Number.NaN;
}
