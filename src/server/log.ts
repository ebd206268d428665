/** pino's numeric levels, as words. */
const LEVELS: Record<number, string> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

/**
 * A stream for fastify's logger (pino, one JSON object a line) that writes
 * each entry as a line a person reads in a terminal: the time, the level, the
 * message, and an error's stack below it.
 */
export function logLines(out: { write(line: string): unknown }): { write(line: string): void } {
  return {
    write(line: string) {
      let entry: { level?: number; time?: number; msg?: string; err?: { stack?: string; message?: string } };
      try {
        entry = JSON.parse(line);
      } catch {
        out.write(line.endsWith("\n") ? line : `${line}\n`);
        return;
      }
      const time = new Date(entry.time ?? Date.now()).toISOString().replace("T", " ").slice(0, 19);
      const stack = entry.err?.stack ? `\n  ${entry.err.stack.split("\n").join("\n  ")}` : "";
      out.write(
        `${time} ${LEVELS[entry.level ?? 30] ?? "log"}: ${entry.msg ?? entry.err?.message ?? ""}${stack}\n`,
      );
    },
  };
}
