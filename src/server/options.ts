import { CloneType, Kind, type TObject, type TSchema, Type } from "@sinclair/typebox";
import { checkAgainst } from "../options/check.js";
import { OPTIONS, type OptionSpec } from "../options/registry.js";
import type { StylizeOptions } from "../stylize/options.js";
import { closest, describeValue } from "../validate.js";
import { HttpError } from "./http-error.js";

/**
 * The server's caps layered on an option's schema: bounds on numbers (of a list's items too), the
 * length of lists and of their strings. A cap never loosens the library's own bound.
 */
function withCaps(schema: TSchema, caps: Record<string, unknown>): TSchema {
  const s = CloneType(schema);
  if (s[Kind] === "Union") {
    s.anyOf = (s.anyOf as TSchema[]).map((b) => withCaps(b, caps));
    return s;
  }
  if (s[Kind] === "Array") {
    for (const k of ["maxItems", "minItems"]) if (caps[k] !== undefined) s[k] = caps[k];
    s.items = withCaps(s.items as TSchema, caps);
    return s;
  }
  if (s[Kind] === "String") {
    s.maxLength = 16;
    return s;
  }
  if (s[Kind] === "Integer" || s[Kind] === "Number") {
    if (typeof caps.maximum === "number")
      s.maximum = Math.min(caps.maximum, (s.maximum as number) ?? Infinity);
    if (typeof caps.minimum === "number")
      s.minimum = Math.max(caps.minimum, (s.minimum as number) ?? -Infinity);
  }
  return s;
}

/** The options the API takes: the registry's entries with server caps, in the library's names. */
const API_OPTIONS = (OPTIONS as readonly OptionSpec[]).filter((o) => o.server !== undefined && o.schema);

/**
 * What a job may ask of stylize(), in the library's own option names, derived from the option
 * registry: the options that shape the picture. Paths (weights, an init image), threads and memory are
 * the server's to decide, so they are not here, and an unknown name is refused rather than ignored.
 * The caps keep one request from asking for hours of work; the library's own checks (layer names,
 * sizes against the network, memory) run after these. `default` is what the library uses when the
 * option is left out; the page reads it to fill its form.
 */
export const JOB_OPTIONS: TObject = Type.Partial(
  Type.Object(
    Object.fromEntries(
      API_OPTIONS.map((o) => {
        const schema = withCaps(o.schema as TSchema, o.server ?? {});
        if (o.default !== undefined && typeof o.default !== "object") schema.default = o.default;
        else if (Array.isArray(o.default)) schema.default = o.default;
        return [o.name, schema];
      }),
    ),
  ),
  { additionalProperties: false },
);

type ApiName = Extract<(typeof OPTIONS)[number], { server: unknown }>["name"];

/** The options of a job: the stylize() options that JOB_OPTIONS lets through. */
export type JobOptions = Partial<Pick<StylizeOptions, Extract<keyof StylizeOptions, ApiName>>>;

/** The API's caps on size and style scale, which the advice in an error must stay within. */
export const API_LIMITS = {
  size: JOB_OPTIONS.properties.size?.maximum as number,
  styleScale: JOB_OPTIONS.properties.styleScale?.maximum as number,
};

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
  for (const [field, v] of Object.entries(value)) {
    try {
      checkAgainst(
        field,
        `options.${field}`,
        (JOB_OPTIONS.properties as Record<string, TSchema>)[field] as TSchema,
        v,
      );
    } catch (e) {
      throw new HttpError(400, (e as Error).message, field);
    }
  }
  return value as JobOptions;
}
