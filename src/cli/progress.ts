import type { Progress } from "../stylize/options.js";

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/**
 * Progress on stderr: a redrawn bar with the loss and the time left on a
 * terminal, plain lines every `every` iterations otherwise (logs, pipes).
 */
export class ProgressReporter {
  private lastDraw = 0;
  /** A bar is drawn and its line not yet ended: the next message must start a line of its own. */
  private midLine = false;
  /** After end() nothing more is drawn: an evaluation finishing after Ctrl-C must not redraw the bar. */
  private ended = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly every: number,
    private readonly tty = Boolean(stream.isTTY),
  ) {}

  /** A run's progress; a video's and a batch's say which frame or how many pictures too. */
  update(p: Progress & { frame?: number; frames?: number | undefined; picture?: string }): void {
    if (this.ended) return;
    const perIteration = p.seconds / p.iteration;
    const where =
      (p.frame === undefined ? "" : `  frame ${p.frame}${p.frames === undefined ? "" : `/${p.frames}`}`) +
      (p.picture === undefined ? "" : `  ${p.picture}`) +
      (p.scales > 1 ? `  scale ${p.scale}/${p.scales} ${p.width}x${p.height}` : "") +
      (p.precision === "int8" ? "  int8" : "");
    const eta = p.etaSeconds;
    if (this.tty) {
      const now = Date.now();
      if (now - this.lastDraw < 100 && p.iteration < p.iterations) return;
      this.lastDraw = now;
      const width = 24;
      const filled = Number.isFinite(p.iterations) ? Math.round((width * p.iteration) / p.iterations) : 0;
      const bar = `${"#".repeat(filled)}${"-".repeat(width - filled)}`;
      this.stream.write(
        `\r[${bar}] ${p.iteration}/${p.iterations}${where}  loss ${p.loss.toExponential(3)}  ${perIteration.toFixed(2)} s/it  ETA ${clock(eta)} `,
      );
      this.midLine = true;
      if (p.iteration === p.iterations) this.endLine();
    } else if (p.iteration === 1 || p.iteration % this.every === 0 || p.iteration === p.iterations) {
      this.stream.write(
        `iteration ${p.iteration}/${p.iterations}${where}  loss ${p.loss.toExponential(4)}  ${p.seconds.toFixed(1)} s  ETA ${clock(eta)}\n`,
      );
    }
  }

  /** Prints a line of its own (a set-up step, a note), ending a bar left mid-line first. */
  line(text: string): void {
    this.endLine();
    this.stream.write(`${text}\n`);
  }

  /** Stops drawing, and ends a bar left mid-line (on an early stop), so that what follows starts a line. */
  end(): void {
    this.ended = true;
    this.endLine();
  }

  private endLine(): void {
    if (this.midLine) this.stream.write("\n");
    this.midLine = false;
  }
}
