import { UsageError } from "./errors.js";

/**
 * Checks of the library's public options. A JavaScript caller (or a JSON
 * request) can pass anything, so each check names the option, what it must be
 * and what it got, as a UsageError: no TypeError or RangeError escapes the API.
 */

/** What a value is, for an error message: `the string "128"`, `-1`, `undefined`, `an object`. */
export function describeValue(v: unknown): string {
  if (typeof v === "string")
    return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v)}`;
  if (typeof v === "number" || typeof v === "boolean" || v === undefined || v === null) return String(v);
  if (typeof v === "bigint") return `the bigint ${v}n`;
  if (typeof v === "function") return "a function";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return `an object`;
}

/** The option a label names: "styles[2]" and "init.image" are about styles and init. */
const optionOf = (label: string) => label.split(/[[.]/)[0] as string;

function fail(name: string, must: string, v: unknown): never {
  throw new UsageError(`${name} must be ${must}, got ${describeValue(v)}`, {
    option: optionOf(name),
    expected: must,
    value: v,
  });
}

export function wholeNumber(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    fail(
      name,
      max === Number.MAX_SAFE_INTEGER ? `a whole number >= ${min}` : `a whole number from ${min} to ${max}`,
      v,
    );
  }
  return v;
}

/** A finite number, > `above` (exclusive) or >= `atLeast`. */
export function finiteNumber(
  name: string,
  v: unknown,
  bound: { above?: number; atLeast?: number } = {},
): number {
  const ok =
    typeof v === "number" &&
    Number.isFinite(v) &&
    (bound.above === undefined || v > bound.above) &&
    (bound.atLeast === undefined || v >= bound.atLeast);
  if (!ok) {
    const range =
      bound.above !== undefined
        ? ` > ${bound.above}`
        : bound.atLeast !== undefined
          ? ` >= ${bound.atLeast}`
          : "";
    fail(name, `a finite number${range}`, v);
  }
  return v as number;
}

export function functionValue(name: string, v: unknown): void {
  if (typeof v !== "function") fail(name, "a function", v);
}

export function listOf<T>(name: string, v: unknown, item: (name: string, x: unknown) => T): T[] {
  if (!Array.isArray(v)) fail(name, "a list (array)", v);
  return (v as unknown[]).map((x, i) => item(`${name}[${i}]`, x));
}

/** A non-empty string, such as a path. */
export function nonEmptyString(name: string, v: unknown): string {
  if (typeof v !== "string" || v.trim() === "") fail(name, "a non-empty string", v);
  return v as string;
}

/** An image: a file path, or { width, height, data } with 3 bytes per pixel. */
export function imageValue(name: string, v: unknown): void {
  if (typeof v === "string") {
    nonEmptyString(name, v);
    return;
  }
  const img = v as { width?: unknown; height?: unknown; data?: unknown } | null;
  if (typeof img !== "object" || img === null || Array.isArray(img)) {
    fail(name, "an image file path or an RgbImage { width, height, data }", v);
  }
  const width = wholeNumber(`${name}.width`, img.width, 1);
  const height = wholeNumber(`${name}.height`, img.height, 1);
  if (!(img.data instanceof Uint8Array) || img.data.length !== width * height * 3) {
    throw new UsageError(
      `${name}.data must be a Uint8Array of width x height x 3 = ${width * height * 3} bytes (RGB), got ${
        img.data instanceof Uint8Array ? `${img.data.length} bytes` : describeValue(img.data)
      }`,
    );
  }
}

/** Edit distance (insertions, deletions, substitutions), case-insensitive: small words only. */
function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let row = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const next = [i];
    for (let j = 1; j <= y.length; j++) {
      next[j] = Math.min(
        (row[j] as number) + 1,
        (next[j - 1] as number) + 1,
        (row[j - 1] as number) + (x[i - 1] === y[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[y.length] as number;
}

/** The candidate a typo most likely meant: within a third of its length in edits, or none. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
