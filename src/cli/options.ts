import type { ParseArgsConfig } from "node:util";
import { Kind, type TSchema } from "@sinclair/typebox";
import { type OptionRef, type OptionStyle, StylegramError, UsageError } from "../errors.js";
import { expectedOf } from "../options/check.js";
import {
  type Command,
  flagOf,
  GROUP_TITLES,
  type Group,
  OPTIONS,
  type OptionSpec,
  optionOfFlag,
} from "../options/registry.js";

/**
 * The CLI's side of the option registry: the flags of each command, their parsing into the library's
 * values, --help, and errors that name flags. The CLI does not check values itself: the library does,
 * and its errors name the option, which the CLI shows as its flag.
 */

type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** The registry's options with a flag in a command. */
export function optionsOf(command: Command): OptionSpec[] {
  return (OPTIONS as readonly OptionSpec[]).filter(
    (o) => o.flag !== null && (o.commands as readonly string[]).includes(command),
  );
}

const flagName = (o: OptionSpec) => (flagOf(o.name) as string).slice(2);
const isBoolean = (o: OptionSpec) => o.schema?.[Kind] === "Boolean";

/** node's parseArgs table for a command's registry flags (the command adds its own: help, positionals). */
export function parseArgsOptions(command: Command): NonNullable<ParseArgsConfig["options"]> {
  const table: NonNullable<ParseArgsConfig["options"]> = {};
  for (const o of optionsOf(command)) {
    table[flagName(o)] = {
      type: isBoolean(o) ? "boolean" : "string",
      ...(o.short ? { short: o.short } : {}),
      ...(o.cli?.multiple ? { multiple: true } : {}),
    };
  }
  return table;
}

/** A decimal number as people write it: 12, -5, 0.5, .5, 1e-3; not hex (0x60), binary or "Infinity". */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** The error for a flag's text that is not what its option takes, in the words the library uses. */
function flagError(
  o: OptionSpec,
  text: string,
  expected = o.cli?.expects ?? (o.schema ? expectedOf(o.schema) : "valid"),
): UsageError {
  return new UsageError(`${flagOf(o.name)} must be ${expected}, got "${text}"`, {
    option: o.name,
    expected,
    value: text,
  });
}

function number(o: OptionSpec, text: string, item?: TSchema): number {
  const t = text.trim();
  if (!DECIMAL.test(t)) throw flagError(o, text, item ? expectedOf(item) : undefined);
  return Number(t);
}

/** A comma-separated list; "" or "none" is the empty list. */
function list(text: string): string[] {
  const t = text.trim();
  if (t === "" || t.toLowerCase() === "none") return [];
  return t.split(",").map((s) => s.trim());
}

/** A flag's text as the library's value, read the way its schema says (numbers, lists, names). */
export function parseFlag(o: OptionSpec, text: string): unknown {
  if (o.cli?.parse) {
    const v = o.cli.parse(text);
    if (typeof v === "number" && Number.isNaN(v)) throw flagError(o, text);
    return v;
  }
  const s = o.schema;
  if (!s) return text;
  const kind = s[Kind];
  if (kind === "Integer" || kind === "Number") return number(o, text);
  if (kind === "Array") {
    const items = s.items as TSchema;
    const kinds = items[Kind];
    return kinds === "Integer" || kinds === "Number"
      ? list(text).map((t) => number(o, t, items))
      : list(text);
  }
  if (kind === "Union") {
    // A number or a list of them (iterations): one value is the number itself.
    const array = (s.anyOf as TSchema[]).find((b) => b[Kind] === "Array");
    if (array) {
      const values = list(text).map((t) => number(o, t, array.items as TSchema));
      return values.length === 1 ? values[0] : values;
    }
  }
  return text;
}

/**
 * The library's options from a command's parsed flags: each flag's text read as its option's value,
 * under the option's library name. Only flags that were given appear.
 */
export function optionsFromFlags(command: Command, values: FlagValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of optionsOf(command)) {
    const v = values[flagName(o)];
    if (v === undefined) continue;
    if (typeof v === "boolean") out[o.name] = v;
    else if (Array.isArray(v)) out[o.name] = v.map((t) => (typeof t === "string" ? parseFlag(o, t) : t));
    else out[o.name] = parseFlag(o, v);
  }
  return out;
}

/** The CLI's way of writing an option in a message: its flag, with the value as typed. */
export const CLI_STYLE: OptionStyle = (r: OptionRef) => {
  const flag = flagOf(r.option);
  if (flag === undefined) return r.option;
  if (r.value === undefined || r.value === true) return flag;
  const text = Array.isArray(r.value) ? r.value.join(",") : String(r.value);
  return `${flag} ${/^[\w.,:/=+-]+$/.test(text) ? text : `'${text}'`}`;
};

/**
 * An error as the CLI says it: each option as its flag; a value wrong in itself as "--flag must be
 * <what the library says>, got <the text as typed>".
 */
export function cliMessage(e: StylegramError, typed: FlagValues = {}): string {
  if (e instanceof UsageError && e.option !== undefined && e.expected !== undefined) {
    const flag = flagOf(e.option);
    if (flag !== undefined) {
      const text = typed[flag.slice(2)];
      const got =
        typeof text === "string"
          ? `"${text}"`
          : typeof e.value === "string"
            ? `"${e.value}"`
            : JSON.stringify(e.value);
      return `${flag} must be ${e.expected}, got ${got}`;
    }
  }
  return e.render(CLI_STYLE);
}

/** Runs a command's body so that the library's errors name its flags, with the values as typed. */
export async function withFlagErrors<T>(typed: FlagValues, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof StylegramError && !(e instanceof FlagError)) {
      throw new FlagError(cliMessage(e, typed), e);
    }
    throw e;
  }
}

/** An error already in the CLI's words. */
export class FlagError extends StylegramError {
  override readonly name: string = "FlagError";
  constructor(text: string, cause: StylegramError) {
    super(text, { exitCode: cause.exitCode, cause });
  }
}

function defaultText(o: OptionSpec): string | undefined {
  if (o.defaultText !== undefined) return o.defaultText;
  if (o.default === undefined || o.default === false) return undefined;
  return Array.isArray(o.default) ? o.default.join(",") : String(o.default);
}

/** The --help lines of a command's flags, by group, from the registry. */
export function flagHelp(command: Command, groups: readonly Group[]): string {
  const sections: string[] = [];
  for (const group of groups) {
    const entries = optionsOf(command).filter((o) => o.group === group);
    if (entries.length === 0) continue;
    const lines = [`${GROUP_TITLES[group]}:`];
    for (const o of entries) {
      const head = `  ${o.short ? `-${o.short}, ` : ""}${flagOf(o.name)}${o.arg ? ` ${o.arg}` : ""}`;
      const def = defaultText(o);
      const text = `${o.help}${def === undefined ? "" : ` (default ${def})`}${o.more ? `; ${o.more}` : ""}`;
      lines.push(...wrap(head, text));
    }
    sections.push(lines.join("\n"));
  }
  return sections.join("\n\n");
}

/** A flag and its help in two columns, the help wrapped at 100 characters. */
function wrap(head: string, text: string): string[] {
  const column = 30;
  const width = 100 - column;
  const words = text.split(" ");
  const lines: string[] = [];
  let line = "";
  for (const w of words) {
    if (line.length > 0 && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line.length === 0 ? w : `${line} ${w}`;
  }
  if (line) lines.push(line);
  const first = head.length < column - 1 ? `${head.padEnd(column)}${lines.shift() ?? ""}` : head;
  return [first, ...lines.map((l) => `${" ".repeat(column)}${l}`)];
}

/** For "did you mean": every flag of a command, without dashes. */
export function flagNames(command: Command): string[] {
  return optionsOf(command).map(flagName);
}

export { optionOfFlag };
