/**
 * The CLI's first contact: a mistyped command, the help's own words, the progress line against the
 * messages that follow it. None of these need the weights.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ProgressReporter } from "../src/cli/progress.js";
import type { Progress } from "../src/stylize/options.js";
import { looksLikeCleanError, runCli } from "./support/cli.js";

/** A terminal that records what is written to it. */
function fakeTerminal(): { stream: NodeJS.WriteStream; text: () => string } {
  let written = "";
  const stream = {
    isTTY: true,
    write: (s: string) => {
      written += s;
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { stream, text: () => written };
}

function progress(iteration: number): Progress {
  return {
    iteration,
    iterations: 10,
    loss: 1e6,
    total: 1e6,
    content: {},
    style: {},
    tv: 0,
    seconds: iteration,
    scale: 1,
    scales: 1,
    width: 64,
    height: 48,
    device: "cpu",
    precision: "fp32",
    etaSeconds: 10 - iteration,
  };
}

describe("the CLI's first contact", () => {
  test("a mistyped command says what it meant instead of reading it as a photo", () => {
    for (const [typed, meant] of [
      ["serv", "serve"],
      ["modles", "models"],
      ["los", "loss"],
    ] as const) {
      const r = runCli([typed, "list"]);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(looksLikeCleanError(r), r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`no command "${typed}" and no file of that name. Did you mean 'stylegram ${meant}'\\?`),
      );
    }
  });

  test("--help does not send the reader to --help, and says the precision's default once", () => {
    const r = runCli(["--help"]);
    assert.equal(r.code, 0);
    assert.doesNotMatch(r.stdout, /Run 'stylegram --help'/);
    assert.doesNotMatch(r.stdout, /on the CPU, fp32 on a GPU/);
    const bare = runCli([]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /Run 'stylegram --help' for the stylize options/);
  });

  test("a message after the progress bar (Ctrl-C, a set-up step) starts a line of its own", () => {
    const t = fakeTerminal();
    const bar = new ProgressReporter(t.stream, 10);
    bar.update(progress(3));
    bar.line("preparing 128x96 (scale 2/2)");
    assert.match(t.text(), /ETA 0:07 \npreparing 128x96/);
    bar.update(progress(4));
    bar.end();
    // An evaluation that finishes after the stop draws nothing more.
    bar.update(progress(5));
    const after = t.text().split("\n").at(-1);
    assert.equal(after, "", `the bar was redrawn after end(): ${JSON.stringify(after)}`);
    assert.doesNotMatch(t.text(), /5\/10/);
  });
});
