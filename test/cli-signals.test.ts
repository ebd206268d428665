/**
 * withStopSignals, which every long command runs under: the first signal asks
 * the work to stop (and it may save what it has); a second one exits at once
 * with that signal's code. The work here never ends by itself, so the order of
 * events is fixed and the test cannot race it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const signalsTs = fileURLToPath(new URL("../src/cli/signals.ts", import.meta.url));

/** A child whose work waits until aborted, then takes forever to wind up; it prints each event. */
function child() {
  const script = `import(${JSON.stringify(signalsTs)}).then(async ({ withStopSignals }) => {
    const r = await withStopSignals(
      (sig) => console.log("stopping " + sig),
      (abort) => new Promise(() => {
        console.log("working");
        abort.addEventListener("abort", () => console.log("winding up"));
        setInterval(() => {}, 1000);
      }),
    );
    console.log("body returned", r);
  });`;
  const proc = spawn(process.execPath, ["--import", "tsx", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  const waitFor = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => out.includes(text) && resolve();
      proc.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        check();
      });
      check();
    });
  const exit = new Promise<number | null>((resolve) => proc.on("close", (code) => resolve(code)));
  return { proc, waitFor, exit, printed: () => out };
}

for (const [first, second, code] of [
  ["SIGINT", "SIGINT", 130],
  ["SIGTERM", "SIGINT", 130],
  ["SIGINT", "SIGTERM", 143],
] as const) {
  test(`${first} asks the work to stop; a second signal (${second}) exits at once with ${code}`, {
    timeout: 30_000,
  }, async () => {
    const c = child();
    // The handlers are in place once the work has begun; a signal before that would kill the child.
    await c.waitFor("working");
    c.proc.kill(first);
    await c.waitFor("winding up");
    assert.match(c.printed(), new RegExp(`stopping ${first}`));
    c.proc.kill(second);
    assert.equal(await c.exit, code);
    assert.doesNotMatch(c.printed(), /body returned/, "the second signal does not wait for the work");
  });
}
