import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { DEFAULTS } from "../options/defaults.js";
import { LIMITS } from "../options/registry.js";
import { DEVICE_REQUESTS } from "../runtime/device.js";
import { COLORS, PRECISIONS, STYLIZE_DEFAULTS } from "../stylize/options.js";
import { closest, describeValue } from "../validate.js";
import { HttpError } from "./http-error.js";

const literals = <T extends string>(values: readonly T[], extra: object = {}) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    extra,
  );
const weight = (fallback: number) => Type.Number({ minimum: 0, maximum: 1e12, default: fallback });
const layerList = Type.Array(Type.String({ minLength: 1, maxLength: 16 }), { maxItems: 16 });
const weightList = Type.Array(Type.Number({ minimum: 0, maximum: 1e12 }), { maxItems: 16 });

/**
 * What a job may ask of stylize(), in the library's own option names: the
 * options that shape the picture. Paths (weights, an init image), threads and
 * memory are the server's to decide, so they are not here, and an unknown name
 * is refused rather than ignored. The bounds keep one request from asking for
 * hours of work; the library's own checks (layer names, sizes against the
 * network, memory) run after these. `default` is what the library uses when the
 * option is left out; the page reads it to fill its form. A new library option
 * is one line here (and one in the page's FIELDS to show it).
 */
export const JOB_OPTIONS = Type.Partial(
  Type.Object({
    size: Type.Integer({ minimum: 1, maximum: 4096, default: STYLIZE_DEFAULTS.size }),
    iterations: Type.Union(
      [
        Type.Integer({ minimum: 1, maximum: 10_000 }),
        Type.Array(Type.Integer({ minimum: 1, maximum: 10_000 }), { minItems: 1, maxItems: 8 }),
      ],
      { default: STYLIZE_DEFAULTS.iterations },
    ),
    scales: Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), { maxItems: 8 }),
    // The library's lower bound; a lower top than its own, since style images of 8x a 4096 size are enough work.
    styleScale: Type.Number({
      minimum: LIMITS.styleScale.min,
      maximum: 8,
      default: STYLIZE_DEFAULTS.styleScale,
    }),
    init: literals(["content", "noise", "style"] as const, { default: STYLIZE_DEFAULTS.init }),
    seed: Type.Integer({ minimum: -(2 ** 31), maximum: 2 ** 31 - 1, default: STYLIZE_DEFAULTS.seed }),
    optimizer: literals(["lbfgs", "adam"] as const, { default: STYLIZE_DEFAULTS.optimizer }),
    learningRate: Type.Number({ exclusiveMinimum: 0, maximum: 1e6 }),
    historySize: Type.Integer({ minimum: 1, maximum: 1000, default: STYLIZE_DEFAULTS.historySize }),
    lineSearch: literals(["none", "strong-wolfe"] as const, { default: STYLIZE_DEFAULTS.lineSearch }),
    colors: literals(COLORS, { default: "style" }),
    // The same as colors "luminance", for clients written before colors existed.
    originalColors: Type.Boolean({ default: false }),
    contentWeight: weight(DEFAULTS.contentWeight),
    styleWeight: weight(DEFAULTS.styleWeight),
    tvWeight: weight(DEFAULTS.tvWeight),
    contentLayers: layerList,
    styleLayers: layerList,
    contentLayerWeights: weightList,
    styleLayerWeights: weightList,
    styleBlend: weightList,
    pooling: literals(["max", "avg"] as const, { default: DEFAULTS.pooling }),
    device: literals(DEVICE_REQUESTS, { default: "auto" }),
    precision: literals(PRECISIONS, { default: STYLIZE_DEFAULTS.precision }),
  }),
  { additionalProperties: false },
);

export type JobOptions = Static<typeof JOB_OPTIONS>;

const check = TypeCompiler.Compile(JOB_OPTIONS);

/** What a value of this schema must be, in words: `a whole number from 1 to 4096`. */
function must(s: TSchema): string {
  if (Array.isArray(s.anyOf)) {
    const consts = s.anyOf.map((x: TSchema) => x.const);
    if (consts.every((c: unknown) => typeof c === "string"))
      return `one of ${consts.map((c: string) => JSON.stringify(c)).join(", ")}`;
    return s.anyOf.map(must).join(", or ");
  }
  const range = (): string => {
    const low =
      s.exclusiveMinimum !== undefined ? `above ${s.exclusiveMinimum}` : (s.minimum as number | undefined);
    if (typeof low === "number" && s.maximum !== undefined) return ` from ${low} to ${s.maximum}`;
    if (low !== undefined)
      return ` ${typeof low === "number" ? `>= ${low}` : low}${s.maximum === undefined ? "" : ` and <= ${s.maximum}`}`;
    return s.maximum === undefined ? "" : ` <= ${s.maximum}`;
  };
  switch (s.type) {
    case "integer":
      return `a whole number${range()}`;
    case "number":
      return `a number${range()}`;
    case "boolean":
      return "true or false";
    case "string":
      return `a string of ${s.minLength ?? 0} to ${s.maxLength} characters`;
    case "array":
      return `a list of at most ${s.maxItems} items, each ${must(s.items as TSchema)}`;
    default:
      return "valid";
  }
}

/**
 * The `options` field of a job request, parsed and checked against JOB_OPTIONS.
 * A bad one is a 400 whose message names the field, what it must be and what it got.
 */
export function parseJobOptions(text: string | undefined): JobOptions {
  if (text === undefined || text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new HttpError(
      400,
      `options is not valid JSON (${(e as Error).message}): send an object such as {"size": 512}`,
      "options",
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(
      400,
      `options must be a JSON object such as {"size": 512}, got ${describeValue(value)}`,
      "options",
    );
  }
  const known = Object.keys(JOB_OPTIONS.properties);
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const meant = closest(key, known);
    throw new HttpError(
      400,
      `options has no field "${key}"${meant ? ` (did you mean "${meant}"?)` : ""}; the fields are ${known.join(", ")}`,
      key,
    );
  }
  const first = check.Errors(value).First();
  if (first !== undefined) {
    const field = first.path.split("/")[1] ?? "options";
    const schema = (JOB_OPTIONS.properties as Record<string, TSchema>)[field] ?? JOB_OPTIONS;
    const got = (value as Record<string, unknown>)[field];
    throw new HttpError(400, `options.${field} must be ${must(schema)}, got ${describeValue(got)}`, field);
  }
  return value as JobOptions;
}
