/** Writes docs/options.md from the option registry. */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { optionsMarkdown } from "../src/options/markdown.js";

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "docs", "options.md");
fs.writeFileSync(file, optionsMarkdown());
process.stdout.write(`wrote ${file}\n`);
