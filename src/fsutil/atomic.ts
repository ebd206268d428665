import fs from "node:fs";
import path from "node:path";
import { StylegramError } from "../errors.js";

/**
 * Writes a file so that readers see the old content or the new, never half of
 * it: a temporary file in the same folder, then a rename over the target.
 */
export function writeFileAtomic(file: string, data: Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new StylegramError(`cannot write ${file}: folder ${dir} does not exist`);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new StylegramError(`cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Refuses an output path that is one of the inputs: the user's files are never overwritten by accident. */
export function assertNotAnInput(output: string, inputs: readonly string[]): void {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  const out = real(output);
  const clash = inputs.find((i) => real(i) === out);
  if (clash)
    throw new StylegramError(`refusing to write ${output}: it is the input image ${clash}`, { exitCode: 2 });
}
