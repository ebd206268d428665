/**
 * An error whose message is meant for the user: it names the problem and, where
 * there is one, the fix. The CLI prints it without a stack trace; anything that
 * is not a StylegramError is a bug and is reported as one.
 */
export class StylegramError extends Error {
  override readonly name = "StylegramError";
  /** Exit code the CLI uses: 2 for bad usage or options, 1 for everything else. */
  readonly exitCode: number;

  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A bad option value or a bad combination of options. */
export class UsageError extends StylegramError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
  }
}
