import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { StylegramError } from "../errors.js";
import { FileExistsError, writeFileAtomic, writeProblem } from "./atomic.js";

/** Whether a process with this id is running (EPERM: it runs, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/**
 * Reserves an output path for this run with a lock file beside it, created
 * exclusively: a second run given the same output stops at once instead of
 * silently replacing the first one's result minutes later. A lock left by a
 * run that was killed (its process is gone) is taken over. Returns the release.
 */
export function reserveOutput(file: string): () => void {
  const lock = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.stylegram-lock`);
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
      break;
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST" || attempt > 0) {
        throw new StylegramError(`cannot reserve ${file}: ${writeProblem(e)}`, { cause: e });
      }
      const pid = Number(fs.readFileSync(lock, "utf8"));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new StylegramError(
          `another stylegram run (process ${pid}) is writing ${file}: wait for it to finish, or choose another -o`,
          { exitCode: 2 },
        );
      }
      fs.rmSync(lock, { force: true });
    }
  }
  // Removing the lock can fail (its folder made read-only meanwhile): the run's result matters more,
  // and the next run takes over a lock whose process is gone.
  const release = () => {
    try {
      fs.rmSync(lock, { force: true });
    } catch {
      // Left behind; harmless.
    }
  };
  // Also on process.exit (a second Ctrl-C), so that no lock outlives the run.
  process.once("exit", release);
  return () => {
    process.off("exit", release);
    release();
  };
}

/** A file name that does not exist yet: `name.recovered-20261128-161502.png` in `dir`. */
function recoveryName(dir: string, file: string): string {
  const ext = path.extname(file);
  const stem = path.basename(file, ext);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return path.join(dir, `${stem}.recovered-${stamp}-${process.pid}${ext}`);
}

export interface SavedResult {
  /** Where the result is. */
  path: string;
  /** When the asked path could not be written: why, and the result is at `path` instead. */
  failure?: string;
}

/**
 * Writes a finished result to `file`; if that fails (a full disk, the path now
 * taken by another run or a folder, permissions), the same bytes go to a
 * recovery file beside it or, failing that, in the temporary folder, so that
 * minutes of work are never thrown away. Throws only when no copy could be kept.
 */
export function saveResult(file: string, bytes: Uint8Array, overwrite: boolean): SavedResult {
  let failure: string;
  try {
    writeFileAtomic(file, bytes, { overwrite });
    return { path: file };
  } catch (e) {
    failure =
      e instanceof FileExistsError
        ? `${file} appeared while this run worked (another run?), and it was not overwritten`
        : (e as Error).message;
  }
  const tries = [path.dirname(path.resolve(file)), os.tmpdir()];
  const problems: string[] = [];
  for (const dir of tries) {
    const where = recoveryName(dir, file);
    try {
      fs.writeFileSync(where, bytes, { flag: "wx" });
      return { path: where, failure };
    } catch (e) {
      // A half-written copy is removed; a file that was already there (EEXIST) is not ours.
      if ((e as { code?: string }).code !== "EEXIST") fs.rmSync(where, { force: true });
      problems.push(`${where}: ${writeProblem(e)}`);
    }
  }
  throw new StylegramError(`${failure}; no copy of the result could be kept either (${problems.join("; ")})`);
}
