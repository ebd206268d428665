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

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly every: number,
    private readonly tty = Boolean(stream.isTTY),
  ) {}

  update(p: Progress): void {
    const perIteration = p.seconds / p.iteration;
    const where =
      (p.scales > 1 ? `  scale ${p.scale}/${p.scales} ${p.width}x${p.height}` : "") +
      (p.precision === "int8" ? "  int8" : "");
    const eta = p.etaSeconds;
    if (this.tty) {
      const now = Date.now();
      if (now - this.lastDraw < 100 && p.iteration < p.iterations) return;
      this.lastDraw = now;
      const width = 24;
      const filled = Math.round((width * p.iteration) / p.iterations);
      const bar = `${"#".repeat(filled)}${"-".repeat(width - filled)}`;
      this.stream.write(
        `\r[${bar}] ${p.iteration}/${p.iterations}${where}  loss ${p.total.toExponential(3)}  ${perIteration.toFixed(2)} s/it  ETA ${clock(eta)} `,
      );
      if (p.iteration === p.iterations) this.stream.write("\n");
    } else if (p.iteration === 1 || p.iteration % this.every === 0 || p.iteration === p.iterations) {
      this.stream.write(
        `iteration ${p.iteration}/${p.iterations}${where}  loss ${p.total.toExponential(4)}  ${p.seconds.toFixed(1)} s  ETA ${clock(eta)}\n`,
      );
    }
  }

  /** Ends a bar left mid-line (on an early stop). */
  end(): void {
    if (this.tty) this.stream.write("\n");
  }
}
