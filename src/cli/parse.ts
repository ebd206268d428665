import { UsageError } from "../errors.js";

/** A finite number from a flag's text, or a usage error naming the flag. */
export function parseNumber(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text.trim());
  if (text.trim() === "" || !Number.isFinite(v))
    throw new UsageError(`${flag} expects a number, got "${text}"`);
  return v;
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
