import { Kind, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { UsageError } from "../errors.js";
import { closest, describeValue } from "../validate.js";
import { OPTIONS, type OptionSpec, optionSpec, type Scope } from "./registry.js";

/**
 * The library's checks of option values, from the registry: each value against its option's schema
 * (or its own check), and the error says, naming the option, what it must be and what it got.
 */

const isKind = (s: TSchema, kind: string) => s[Kind] === kind;

/** What a value of a schema must be, in words: "a whole number from 1 to 4096", `one of "max", "avg"`. */
export function expectedOf(schema: TSchema): string {
  if (isKind(schema, "Union")) {
    const branches = schema.anyOf as TSchema[];
    if (branches.every((b) => isKind(b, "Literal")))
      return `one of ${branches.map((b) => JSON.stringify(b.const)).join(", ")}`;
    return branches.map(expectedOf).join(", or ");
  }
  if (isKind(schema, "Integer")) {
    const { minimum: min, maximum: max } = schema as { minimum?: number; maximum?: number };
    if (min === Number.MIN_SAFE_INTEGER && max === Number.MAX_SAFE_INTEGER) return "a whole number";
    if (min !== undefined && max !== undefined) return `a whole number from ${min} to ${max}`;
    if (min !== undefined) return `a whole number >= ${min}`;
    return max === undefined ? "a whole number" : `a whole number <= ${max}`;
  }
  if (isKind(schema, "Number")) {
    const {
      minimum: min,
      maximum: max,
      exclusiveMinimum: above,
    } = schema as Record<string, number | undefined>;
    if (min !== undefined && max !== undefined) return `a number from ${min} to ${max}`;
    if (above !== undefined && max !== undefined) return `a number above ${above} and at most ${max}`;
    if (above !== undefined) return `a finite number > ${above}`;
    if (min !== undefined) return `a finite number >= ${min}`;
    return max === undefined ? "a finite number" : `a finite number <= ${max}`;
  }
  if (isKind(schema, "Boolean")) return "true or false";
  if (isKind(schema, "String")) {
    const { maxLength } = schema as { maxLength?: number };
    return maxLength === undefined ? "a non-empty string" : `a string of 1 to ${maxLength} characters`;
  }
  if (isKind(schema, "Array")) {
    const { maxItems } = schema as { maxItems?: number };
    return maxItems === undefined ? "a list (array)" : `a list (array) of at most ${maxItems} items`;
  }
  if (isKind(schema, "Literal")) return JSON.stringify(schema.const);
  return "valid";
}

/** The error for a value that is wrong in itself. */
export function valueError(option: string, label: string, expected: string, value: unknown): UsageError {
  return new UsageError(`${label} must be ${expected}, got ${describeValue(value)}`, {
    option,
    expected,
    value,
  });
}

/**
 * Checks a value against a schema and says what is wrong: a list's wrong item by its index, a union
 * by the branch the value's shape picks (a list, or a single value).
 */
export function checkAgainst(option: string, label: string, schema: TSchema, value: unknown): void {
  if (isKind(schema, "Union")) {
    const branches = schema.anyOf as TSchema[];
    if (branches.some((b) => Value.Check(b, value))) return;
    const list = branches.find((b) => isKind(b, "Array"));
    const single = branches.filter((b) => !isKind(b, "Array"));
    if (list && Array.isArray(value)) checkAgainst(option, label, list, value);
    else if (single.length === 1 && list) checkAgainst(option, label, single[0] as TSchema, value);
    else throw valueError(option, label, expectedOf(schema), value);
    return;
  }
  if (isKind(schema, "Array")) {
    if (!Array.isArray(value)) throw valueError(option, label, expectedOf(schema), value);
    const { maxItems, minItems } = schema as { maxItems?: number; minItems?: number };
    if (
      (maxItems !== undefined && value.length > maxItems) ||
      (minItems !== undefined && value.length < minItems)
    )
      throw valueError(option, label, expectedOf(schema), value);
    value.forEach((item, i) => {
      checkAgainst(option, `${label}[${i}]`, schema.items as TSchema, item);
    });
    return;
  }
  // JSON has no NaN or Infinity, and a schema's number accepts them: a number must be finite.
  const finite = typeof value !== "number" || Number.isFinite(value);
  if (!finite || !Value.Check(schema, value)) throw valueError(option, label, expectedOf(schema), value);
}

/** Checks one option's value (its own check, or its schema); `label` names it in the message. */
export function checkOption(name: string, value: unknown, label = name): void {
  const spec = optionSpec(name);
  if (spec.check) spec.check(label, value);
  else if (spec.schema) checkAgainst(name, label, spec.schema, value);
}

/** The names of the options of some scopes: the keys an options object may have. */
export function namesIn(...scopes: Scope[]): string[] {
  return OPTIONS.filter((o) => (scopes as string[]).includes(o.scope)).map((o) => o.name);
}

/** Refuses keys an options object does not have: a misspelt option would otherwise be ignored silently. */
export function knownKeys(what: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const close = closest(key, known);
    throw new UsageError(`${what} has no option "${key}"${close ? ` (did you mean "${close}"?)` : ""}`, {
      option: key,
    });
  }
}

/** Checks every option present in an object against the registry. */
export function checkPresent(options: Record<string, unknown>, names: readonly string[]): void {
  for (const name of names) {
    const v = options[name];
    if (v !== undefined) checkOption(name, v);
  }
}

export type { OptionSpec };
