import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const BUILT = path.join(ROOT, "dist", "cli", "run.js");

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

let fresh: boolean | undefined;

/** Whether dist/ was built after the last change to src/. */
export function builtIsFresh(): boolean {
  fresh ??= fs.existsSync(BUILT) && fs.statSync(BUILT).mtimeMs >= newestSource(path.join(ROOT, "src"));
  return fresh;
}

let entry: string[] | undefined;

/**
 * The node arguments that start the CLI: the built one (dist/, as a user runs it) when it is newer
 * than every source file, since tsx costs about a second of start-up a process and the suite starts
 * over a hundred; else the sources through tsx, so that an edit is tested before a build.
 */
export function cliEntry(): string[] {
  if (!entry) {
    const fresh = fs.existsSync(BUILT) && fs.statSync(BUILT).mtimeMs >= newestSource(path.join(ROOT, "src"));
    entry = fresh ? [BUILT] : ["--import", "tsx", path.join(ROOT, "src", "cli", "run.ts")];
  }
  return entry;
}
