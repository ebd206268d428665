import { StylegramError } from "../errors.js";

/** The signals that ask a command to stop: Ctrl-C, and what `timeout`, `docker stop`, systemd and CI send. */
export const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** The shell's convention: 128 + the signal's number. */
export const SIGNAL_EXIT_CODES: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/**
 * Runs `body` with SIGINT, SIGTERM and SIGHUP turned into an abort of the
 * signal it is given, so that it can finish cleanly (save the best image,
 * remove a partial download). `onStop` says what happens; a second signal
 * exits at once with that signal's code. Returns body's value and the signal
 * that stopped it, if any.
 */
export async function withStopSignals<T>(
  onStop: (signal: StopSignal) => void,
  body: (abort: AbortSignal) => Promise<T>,
): Promise<{ value: T; stoppedBy: StopSignal | undefined }> {
  const controller = new AbortController();
  let stoppedBy: StopSignal | undefined;
  const handlers = STOP_SIGNALS.map((sig) => {
    const handler = () => {
      if (stoppedBy !== undefined) process.exit(SIGNAL_EXIT_CODES[sig]);
      stoppedBy = sig;
      onStop(sig);
      controller.abort(new Error(`stopped by ${sig}`));
    };
    process.on(sig, handler);
    return [sig, handler] as const;
  });
  try {
    const value = await body(controller.signal);
    return { value, stoppedBy };
  } catch (e) {
    // What a stop interrupted (a download, say) ends with the signal's exit code, not as a failure.
    if (stoppedBy !== undefined && e instanceof StylegramError) {
      throw new StylegramError(e.message, { exitCode: SIGNAL_EXIT_CODES[stoppedBy], cause: e });
    }
    throw e;
  } finally {
    for (const [sig, handler] of handlers) process.off(sig, handler);
  }
}

/** The exit code for a run that a signal stopped, or `otherwise`. */
export function exitCodeFor(stoppedBy: StopSignal | undefined, otherwise: number): number {
  return stoppedBy === undefined ? otherwise : SIGNAL_EXIT_CODES[stoppedBy];
}
