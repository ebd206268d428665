/** Download progress on stderr: a redrawn line on a terminal, a line per 10% otherwise. */
export function downloadProgress(stream: NodeJS.WriteStream, name: string) {
  let lastTenth = -1;
  let lastDraw = 0;
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return {
    update: (received: number, total: number | undefined) => {
      const pct = total ? Math.floor((100 * received) / total) : undefined;
      if (stream.isTTY) {
        const now = Date.now();
        if (now - lastDraw < 100) return;
        lastDraw = now;
        stream.write(`\r  ${name}: ${mb(received)}${total ? ` / ${mb(total)} MB (${pct}%)` : " MB"}   `);
      } else if (pct !== undefined && Math.floor(pct / 10) > lastTenth) {
        lastTenth = Math.floor(pct / 10);
        stream.write(`  ${name}: ${pct}% of ${mb(total as number)} MB\n`);
      }
    },
    end: () => {
      if (stream.isTTY) stream.write("\n");
    },
  };
}
