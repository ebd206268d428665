import { main } from "./main.js";

// A separate entry so that importing main.ts (from tests) does not run the CLI.
process.exitCode = await main(process.argv.slice(2));
