/**
 * An option named inside a message. Each surface shows it its own way: the library as the options
 * object's key (`size: 512`), the CLI as its flag (`--size 512`), the server as the JSON field
 * (`"size": 512`); see OptionStyle.
 */
export interface OptionRef {
  readonly option: string;
  /** The value to give it, when the message suggests one. */
  readonly value?: string | number | boolean;
}

export type MessagePart = string | OptionRef;

/** An option (with a value to give it) for a message: `opt("size", 512)`. */
export function opt(option: string, value?: string | number | boolean): OptionRef {
  return value === undefined ? { option } : { option, value };
}

/** A message whose ${...} parts may be options (opt()): `message\`use ${opt("size", 512)}\``. */
export function message(strings: TemplateStringsArray, ...values: unknown[]): MessagePart[] {
  const parts: MessagePart[] = [];
  strings.forEach((s, i) => {
    if (s !== "") parts.push(s);
    if (i < values.length) {
      const v = values[i];
      parts.push(typeof v === "object" && v !== null && "option" in v ? (v as OptionRef) : String(v));
    }
  });
  return parts;
}

/** How a surface writes an option reference. */
export type OptionStyle = (ref: OptionRef) => string;

/** The library's way: the key of the options object, with the value as JSON. */
export const LIBRARY_STYLE: OptionStyle = (r) =>
  r.value === undefined ? r.option : `${r.option}: ${JSON.stringify(r.value)}`;

/**
 * An error whose message is meant for the user: it names the problem and, where
 * there is one, the fix. The CLI prints it without a stack trace; anything that
 * is not a StylegramError is a bug and is reported as one.
 */
export class StylegramError extends Error {
  override readonly name: string = "StylegramError";
  /** Exit code the CLI uses: 2 for bad usage or options, 1 for everything else. */
  readonly exitCode: number;
  /** The message with its option references, for the surfaces that name options their own way. */
  readonly parts: readonly MessagePart[];

  constructor(text: string | readonly MessagePart[], options: { exitCode?: number; cause?: unknown } = {}) {
    const parts = typeof text === "string" ? [text] : text;
    super(
      renderMessage(parts, LIBRARY_STYLE),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.parts = parts;
    this.exitCode = options.exitCode ?? 1;
  }

  /** The message with each option written in a surface's style (the CLI's flags, the server's fields). */
  render(style: OptionStyle): string {
    return renderMessage(this.parts, style);
  }
}

export function renderMessage(parts: readonly MessagePart[], style: OptionStyle): string {
  return parts.map((p) => (typeof p === "string" ? p : style(p))).join("");
}

/** A bad option value or a bad combination of options. */
export class UsageError extends StylegramError {
  override readonly name: string = "UsageError";
  /** The option the error is about, by its library name: the CLI shows its flag, the server its field. */
  readonly option: string | undefined;
  /**
   * For a value wrong in itself: what the option must be ("a whole number >= 1") and the value given,
   * so that each surface says "<its name for the option> must be <expected>, got <the value as given>".
   */
  readonly expected: string | undefined;
  readonly value: unknown;

  constructor(
    text: string | readonly MessagePart[],
    details: { option?: string; expected?: string; value?: unknown } = {},
  ) {
    super(text, { exitCode: 2 });
    this.option = details.option;
    this.expected = details.expected;
    this.value = details.value;
  }
}

/** The run would not fit in memory; nothing was started. */
export class OutOfMemoryError extends StylegramError {
  override readonly name: string = "OutOfMemoryError";
}

/** The optimisation left the realm of numbers; nothing it produced is worth saving. */
export class DivergedError extends StylegramError {
  override readonly name: string = "DivergedError";
}

/** The caller's AbortSignal stopped the work (for instance while an objective was being set up). */
export class StoppedError extends StylegramError {
  override readonly name: string = "StoppedError";
  constructor(what = "the work") {
    super(`stopped: ${what} was cancelled`);
  }
}

/** Throws StoppedError when the signal has aborted: called between the steps of a long set-up. */
export function throwIfStopped(signal: AbortSignal | undefined, what?: string): void {
  if (signal?.aborted) throw new StoppedError(what);
}

/** The signal stopped the run before its first iteration: there is no picture to return. */
export class StoppedBeforeStartError extends StylegramError {
  override readonly name: string = "StoppedBeforeStartError";
  constructor() {
    super("stopped before the first iteration: there is no picture to save yet");
  }
}
