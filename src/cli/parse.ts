import { UsageError } from "../errors.js";

/** A decimal number as people write it: 12, -5, 0.5, .5, 1e-3; not hex (0x60), binary or "Infinity". */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A finite number from a flag's text, or a usage error naming the flag. */
export function parseNumber(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  const v = Number(t);
  if (!DECIMAL.test(t) || !Number.isFinite(v))
    throw new UsageError(`${flag} expects a number, got "${text}"`);
  return v;
}

/**
 * node's parseArgs refuses `--size -5` as "ambiguous" (the value looks like a
 * flag). A value that is a number is what the user meant, so it is joined to
 * its flag (`--size=-5`) and the flag's own check says what is wrong with it.
 */
export function joinNegativeValues(argv: readonly string[], valueFlags: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = argv[i + 1];
    if (valueFlags.has(a) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** The long flags of a parseArgs options table that take a value, as typed: `--size`. */
export function valueFlags(options: Record<string, { type: string }>): Set<string> {
  return new Set(
    Object.entries(options)
      .filter(([, o]) => o.type === "string")
      .map(([name]) => `--${name}`),
  );
}

/** A positive whole number. */
export function parseCount(flag: string, text: string | undefined): number | undefined {
  const v = parseNumber(flag, text);
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
    throw new UsageError(`${flag} expects a whole number >= 1, got "${text}"`);
  }
  return v;
}

/** A comma-separated list of names; "" or "none" is the empty list. */
export function parseList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === "" || t.toLowerCase() === "none") return [];
  return t.split(",").map((s) => s.trim());
}

/** A comma-separated list of numbers. */
export function parseNumbers(flag: string, text: string | undefined): number[] | undefined {
  const items = parseList(text);
  return items?.map((s) => parseNumber(flag, s) as number);
}

export function oneOf<T extends string>(
  flag: string,
  text: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (text === undefined) return undefined;
  if (!allowed.includes(text as T))
    throw new UsageError(`${flag} must be one of ${allowed.join(", ")}; got "${text}"`);
  return text as T;
}
