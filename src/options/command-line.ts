import { flagOf } from "./registry.js";

/**
 * The `stylegram` command that does what a set of stylize() options does, with each option's flag
 * from the registry, so that the web app can show, beside each result, a command that makes the
 * same picture.
 */

/** The flag of a stylize() option: styleWeight -> --style-weight. */
export function flagFor(option: string): string {
  return flagOf(option) ?? `--${option}`;
}

/** One word for a POSIX shell: left bare when it is safe, else in single quotes. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A file name as an argument: one starting with '-' would read as a flag, so it gets ./ in front. */
function fileArgument(name: string): string {
  return name.startsWith("-") ? `./${name}` : name;
}

export type OptionValue = string | number | boolean | readonly (string | number)[];

export interface CommandInput {
  content: string;
  styles: readonly string[];
  output: string;
  /** stylize() options with plain values, in the library's names. */
  options: Readonly<Record<string, OptionValue | undefined>>;
  /** The weights path the run used, when it was given explicitly (a flag or $STYLEGRAM_WEIGHTS). */
  weights?: string;
}

/** The command's arguments (without `stylegram`), as the CLI's parser reads them. */
export function commandArguments(input: CommandInput): string[] {
  const args = [
    fileArgument(input.content),
    ...input.styles.map(fileArgument),
    "-o",
    fileArgument(input.output),
  ];
  for (const [option, value] of Object.entries(input.options)) {
    if (value === undefined || value === false) continue;
    const flag = flagFor(option);
    if (value === true) args.push(flag);
    else if (Array.isArray(value)) args.push(flag, value.length === 0 ? "none" : value.join(","));
    else args.push(flag, String(value));
  }
  if (input.weights !== undefined) args.push("--weights", input.weights);
  return args;
}

/** The command as a person types it in a POSIX shell. */
export function equivalentCommand(input: CommandInput): string {
  return ["stylegram", ...commandArguments(input)].map(shellWord).join(" ");
}
