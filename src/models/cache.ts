import path from "node:path";
import envPaths from "env-paths";
import type { ModelSpec } from "./registry.js";

/** Where fetched weights live: $STYLEGRAM_HOME, else the XDG cache folder (~/.cache/stylegram). */
export function cacheDir(): string {
  const home = process.env.STYLEGRAM_HOME;
  return home && home.length > 0 ? path.resolve(home) : envPaths("stylegram", { suffix: "" }).cache;
}

export function cachedPath(spec: ModelSpec, dir = cacheDir()): string {
  return path.join(dir, spec.file);
}
