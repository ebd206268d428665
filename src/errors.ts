/**
 * An error whose message is meant for the user: it names the problem and, where
 * there is one, the fix. The CLI prints it without a stack trace; anything that
 * is not a StylegramError is a bug and is reported as one.
 */
export class StylegramError extends Error {
  override readonly name: string = "StylegramError";
  /** Exit code the CLI uses: 2 for bad usage or options, 1 for everything else. */
  readonly exitCode: number;

  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A bad option value or a bad combination of options. */
export class UsageError extends StylegramError {
  override readonly name: string = "UsageError";
  constructor(message: string) {
    super(message, { exitCode: 2 });
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
