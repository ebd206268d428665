import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SHARED = path.resolve(ROOT, "..", "shared");
export const WEIGHTS = path.join(SHARED, "models", "vgg19");
export const CHILDREN = path.join(ROOT, "bench", "children.ts");

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

export function fmt(v: number | undefined, digits = 2): string {
  return v === undefined || Number.isNaN(v) ? "-" : v.toFixed(digits);
}

export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows) console.log(line(r));
}

/**
 * Writes tubingen and starry_night at `size` as PNG (square, or on the long edge),
 * so that both implementations read exactly the same pixels.
 */
export async function prepareImages(
  dir: string,
  size: number,
  fit: "square" | "long-edge",
): Promise<{ content: string; style: string }> {
  const content = path.join(dir, `content_${size}_${fit}.png`);
  const style = path.join(dir, `style_${size}_${fit}.png`);
  for (const [src, dst] of [
    ["tubingen.jpg", content],
    ["starry_night.jpg", style],
  ] as const) {
    await sharp(path.join(SHARED, "images", src))
      .resize(size, size, { fit: fit === "square" ? "fill" : "inside", kernel: "lanczos3" })
      .png()
      .toFile(dst);
  }
  return { content, style };
}

/** Runs a measurement in its own process (so its peak RSS is its own) and parses its last stdout line. */
export function runJson<T>(command: string, args: string[]): T {
  const out = execFileSync(command, args, {
    encoding: "utf8",
    maxBuffer: 64 << 20,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").pop() as string) as T;
}

/** A stylegram measurement child (bench/children.ts). */
export function runChild<T>(kind: string, args: (string | number)[]): T {
  return runJson<T>(process.execPath, ["--import", "tsx", CHILDREN, kind, ...args.map(String)]);
}
