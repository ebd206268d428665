import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cliEntry } from "./cli-entry.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A CLI run in the background whose stderr can be waited on, for tests that signal or race it. */
export interface RunningCli {
  child: ChildProcess;
  /** Resolves once stderr matches (rejects if the process ends first). */
  waitFor(pattern: RegExp): Promise<void>;
  /** Resolves with the exit code (or 128 + signal number) and everything printed. */
  done: Promise<{ code: number; stdout: string; stderr: string }>;
  /** What it has printed so far. */
  printed(): { stdout: string; stderr: string };
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export function startCli(args: string[], env: Record<string, string | undefined> = {}): RunningCli {
  const child = spawn(process.execPath, [...cliEntry(), ...args], {
    cwd: ROOT,
    env: { ...process.env, STYLEGRAM_DEBUG: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  child.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
    for (const w of waiters.splice(0)) {
      if (w.pattern.test(stderr)) w.resolve();
      else waiters.push(w);
    }
  });
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code, signal) =>
      resolve({ code: code ?? 128 + (SIGNALS[signal ?? ""] ?? 0), stdout, stderr }),
    ),
  );
  return {
    child,
    done,
    printed: () => ({ stdout, stderr }),
    waitFor: (pattern) =>
      new Promise<void>((resolve, reject) => {
        if (pattern.test(stderr)) return resolve();
        waiters.push({ pattern, resolve });
        void done.then((r) => reject(new Error(`exited ${r.code} before ${pattern}:\n${r.stderr}`)));
      }),
  };
}
