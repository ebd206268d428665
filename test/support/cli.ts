import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startCli } from "./child.js";
import { cliEntry } from "./cli-entry.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the stylegram CLI from source in a child process, as a user would run it. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): CliResult {
  const r = spawnSync(process.execPath, [...cliEntry(), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, STYLEGRAM_DEBUG: "", ...env },
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A user-facing error: non-zero exit, a message on stderr, and no stack trace. */
export function looksLikeCleanError(r: CliResult): boolean {
  return r.code !== 0 && /^stylegram: /m.test(r.stderr) && !/\n\s+at /.test(r.stderr);
}

/** runCli without blocking this process, for tests whose server runs in this process. */
export function runCliAsync(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return startCli(args, env).done;
}
