import fs from "node:fs";

/**
 * The package's version, read from its package.json: the same file sits one
 * folder above both src/ (a clone) and dist/ (an installed package).
 */
export const VERSION: string = (
  JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;
