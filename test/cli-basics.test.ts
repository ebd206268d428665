/**
 * The CLI's first contact: a mistyped command, the help's own words, the progress line against the
 * messages that follow it. None of these need the weights.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
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
    timing: { objective: 0.9, optimizer: 0.05, other: 0.05 },
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

describe("shell completion, from the option registry", () => {
  const script = (shell: string) => {
    const r = runCli(["completion", shell]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    assert.equal(r.error, undefined, `${cmd} is installed (.ci/run installs it)`);
    return r;
  };

  test("bash completes commands, flags and a flag's choices", () => {
    const file = path.join(os.tmpdir(), `stylegram-completion-${process.pid}.bash`);
    fs.writeFileSync(file, script("bash"));
    try {
      const complete = (words: string[]) =>
        run("bash", [
          "-c",
          `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _stylegram; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ]).stdout.trim();
      assert.equal(complete(["stylegram", "photo.jpg", "--pool"]), "--pooling");
      assert.equal(complete(["stylegram", "--colors", ""]), "style\nluminance\nhistogram");
      assert.match(complete(["stylegram", "loss", "--grad"]), /^--grad-out$/);
      assert.match(complete(["stylegram", "mod"]), /^models$/m);
      assert.equal(complete(["stylegram", "wor"]), "worker");
      assert.match(complete(["stylegram", "worker", "--que"]), /^--queue$/);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  test("fish completes flags with their help; zsh's script parses", () => {
    const file = path.join(os.tmpdir(), `stylegram-completion-${process.pid}.fish`);
    fs.writeFileSync(file, script("fish"));
    try {
      const out = run("fish", ["-c", `source ${file}; complete -C 'stylegram --precision '`]).stdout;
      assert.deepEqual(
        out
          .trim()
          .split("\n")
          .map((l) => l.split("\t")[0])
          .sort(),
        ["fp32", "int8", "mixed"],
      );
      assert.match(
        run("fish", ["-c", `source ${file}; complete -C 'stylegram --tv'`]).stdout,
        /--tv-weight\tweight of the total-variation/,
      );
    } finally {
      fs.rmSync(file, { force: true });
    }
    const zsh = path.join(os.tmpdir(), `stylegram-completion-${process.pid}.zsh`);
    fs.writeFileSync(zsh, script("zsh"));
    try {
      assert.equal(run("zsh", ["-n", zsh]).status, 0);
      assert.match(
        fs.readFileSync(zsh, "utf8"),
        /'--pooling\[VGG19'\\''s pooling {2}max or avg\]:value:\(max avg\)'/,
      );
    } finally {
      fs.rmSync(zsh, { force: true });
    }
  });

  test("an unknown shell names the three", () => {
    const r = runCli(["completion", "tcsh"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /completion needs a shell: bash, zsh or fish \(got "tcsh"\)/);
  });
});

test("docs/options.md is the registry's current table (npm run docs:options writes it)", async () => {
  const { optionsMarkdown } = await import("../src/options/markdown.js");
  const file = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "docs", "options.md");
  assert.equal(fs.readFileSync(file, "utf8"), optionsMarkdown(), "run npm run docs:options");
});
