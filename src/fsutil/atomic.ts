import fs from "node:fs";
import path from "node:path";
import { StylegramError } from "../errors.js";

/** A file that stood at the target when a write without overwrite reached it. */
export class FileExistsError extends StylegramError {
  override readonly name: string = "FileExistsError";
  constructor(readonly file: string) {
    super(`${file} already exists: pass --force to overwrite it`, { exitCode: 2 });
  }
}

/** Words for a failed write: the system's reason without node's call-site noise. */
export function writeProblem(e: unknown): string {
  const code = (e as { code?: string }).code;
  switch (code) {
    case "ENOSPC":
      return "no space left on the device";
    case "EDQUOT":
      return "disk quota exceeded";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EROFS":
      return "the file system is read-only";
    case "EISDIR":
      return "it is a folder";
    case "ENOENT":
      return "its folder does not exist";
    default:
      return (e as Error).message;
  }
}

/**
 * Writes a file so that readers see the old content or the new, never half of
 * it: a temporary file in the same folder, then a rename over the target.
 * Without `overwrite`, the temporary file is hard-linked to the target instead,
 * which fails if anything appeared there meanwhile (another run's result), so
 * nothing is ever replaced silently.
 */
export function writeFileAtomic(file: string, data: Uint8Array, options: { overwrite?: boolean } = {}): void {
  const overwrite = options.overwrite ?? true;
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new StylegramError(`cannot write ${file}: folder ${dir} does not exist`);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.writeFileSync(tmp, data, { flag: "wx" });
    if (overwrite) {
      if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
        throw Object.assign(new Error("is a folder"), { code: "EISDIR" });
      }
      fs.renameSync(tmp, file);
    } else {
      fs.linkSync(tmp, file);
      fs.rmSync(tmp, { force: true });
    }
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if ((e as { code?: string }).code === "EEXIST") throw new FileExistsError(file);
    throw new StylegramError(`cannot write ${file}: ${writeProblem(e)}`, { cause: e });
  }
}

/**
 * Checks before any work that `file` can be created: its folder exists and is
 * writable, it is not a folder, and it does not exist unless `force`.
 */
export function checkWritable(file: string, force: boolean, flag = "--force"): void {
  const dir = path.dirname(path.resolve(file));
  const dirStat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!dirStat) throw new StylegramError(`cannot write ${file}: folder ${dir} does not exist`);
  if (!dirStat.isDirectory())
    throw new StylegramError(`cannot write ${file}: ${dir} is a file, not a folder`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new StylegramError(`cannot write ${file}: folder ${dir} is not writable`);
  }
  // lstat: a link at the path counts as a file there, even one whose target is missing.
  const link = fs.lstatSync(file, { throwIfNoEntry: false });
  const stat = link?.isSymbolicLink() ? (fs.statSync(file, { throwIfNoEntry: false }) ?? link) : link;
  if (stat?.isDirectory()) {
    throw new StylegramError(
      `${file} is a folder: give a file name, such as ${path.join(file, `result${path.extname(file) || ".png"}`)}`,
      { exitCode: 2 },
    );
  }
  if (stat && !force) {
    const what = link?.isSymbolicLink() && stat === link ? " (a link to a missing file)" : "";
    throw new StylegramError(`${file} already exists${what}: pass ${flag} to overwrite it`, { exitCode: 2 });
  }
}

/** Refuses an output path that is one of the inputs: the user's files are never overwritten by accident. */
export function assertNotAnInput(output: string, inputs: readonly string[]): void {
  const clash = inputs.find((i) => samePath(i, output));
  if (clash)
    throw new StylegramError(`refusing to write ${output}: it is the input image ${clash}`, { exitCode: 2 });
}

/** A path's one spelling: links resolved where the file exists, else made absolute. */
export function canonicalPath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** Whether two paths name the same file (links resolved where the file exists). */
export function samePath(a: string, b: string): boolean {
  return canonicalPath(a) === canonicalPath(b);
}
