import fs from "node:fs";
import { StylegramError, UsageError } from "../errors.js";
import { closest } from "../validate.js";
import { VERSION } from "../version.js";
import { BATCH_FLAG_NAMES, BATCH_HELP, batchCommand } from "./commands/batch.js";
import { LOSS_FLAG_NAMES, LOSS_HELP, lossCommand } from "./commands/loss.js";
import { MODELS_FLAG_NAMES, MODELS_FLAGS, MODELS_HELP, modelsCommand } from "./commands/models.js";
import { SERVE_FLAG_NAMES, SERVE_FLAGS, SERVE_HELP, serveCommand } from "./commands/serve.js";
import { STYLIZE_FLAG_NAMES, STYLIZE_HELP, stylizeCommand } from "./commands/stylize.js";
import { VIDEO_FLAG_NAMES, VIDEO_HELP, videoCommand } from "./commands/video.js";
import { WORKER_FLAG_NAMES, WORKER_HELP, workerCommand } from "./commands/worker.js";
import { commandFlags, completionScript } from "./completion.js";
import { cliMessage, FlagError } from "./options.js";

const HELP = `stylegram: neural style transfer (Gatys et al.) with VGG19

Usage:
  stylegram CONTENT STYLE [STYLE...] -o OUT [options]        stylize a photo
  stylegram batch PHOTO... --style S [--style S2...] -o DIR   every photo in every style, resumable
  stylegram video IN -o OUT --style S [options]              a video, without flicker (temporal loss)
  stylegram loss --content C --style S --image X [options]   print every loss term as JSON
  stylegram models fetch|list|verify                         manage the VGG19 weights
  stylegram serve [--port 8080] [--concurrency 1]            the web app: drop two images, watch it paint
  stylegram worker --queue redis://HOST:PORT                 run the jobs of a 'serve --queue' on this machine
  stylegram help [COMMAND]                                   help on a command (batch, video, loss, models, serve, worker)
  stylegram completion bash|zsh|fish                         shell completion, e.g. > ~/.local/share/bash-completion/completions/stylegram
  stylegram --version                                        the installed version`;

/** Said under the overview when it is shown alone (no arguments), not above the stylize options. */
const MORE_HELP = "Run 'stylegram --help' for the stylize options, 'stylegram help COMMAND' for a command's.";

const COMMAND_HELP: Record<string, string> = {
  batch: BATCH_HELP,
  video: VIDEO_HELP,
  loss: LOSS_HELP,
  models: MODELS_HELP,
  serve: SERVE_HELP,
  worker: WORKER_HELP,
};

/** Runs the CLI and returns the exit code; errors meant for the user are printed without a stack trace. */
export async function main(argv: string[]): Promise<number> {
  const out = (s: string) => process.stdout.write(s);
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
        process.stderr.write(`${HELP}\n\n${MORE_HELP}\n`);
        return 2;
      case "help":
        if (rest[0] !== undefined && COMMAND_HELP[rest[0]] === undefined) {
          const meant = closest(rest[0], Object.keys(COMMAND_HELP));
          throw new UsageError(
            `no command "${rest[0]}"${meant ? ` (did you mean 'stylegram help ${meant}'?)` : ""}: the commands are batch, video, loss, models, serve and worker, and stylizing itself ('stylegram help')`,
          );
        }
        out(`${rest[0] === undefined ? `${HELP}\n\n${STYLIZE_HELP}` : COMMAND_HELP[rest[0]]}\n`);
        return 0;
      case "--help":
      case "-h":
        out(`${HELP}\n\n${STYLIZE_HELP}\n`);
        return 0;
      case "--version":
      case "-v":
        out(`stylegram ${VERSION}\n`);
        return 0;
      case "batch":
        return await batchCommand(rest, out);
      case "video":
        return await videoCommand(rest, out);
      case "loss":
        return await lossCommand(rest, out);
      case "models":
        return await modelsCommand(rest, out);
      case "serve":
        return await serveCommand(rest, out);
      case "worker":
        return await workerCommand(rest, out);
      case "completion":
        out(completionScript(rest[0] as string, commandFlags({ serve: SERVE_FLAGS, models: MODELS_FLAGS })));
        return 0;
      default:
        assertNotACommandTypo(command);
        // Anything else is the main job: stylegram CONTENT STYLE... -o OUT.
        return await stylizeCommand(argv, out);
    }
  } catch (e) {
    return reportError(e, argv);
  }
}

/** Each command's flags, for "did you mean" on a misspelt one. */
const FLAG_NAMES: Record<string, readonly string[]> = {
  batch: BATCH_FLAG_NAMES,
  video: VIDEO_FLAG_NAMES,
  loss: LOSS_FLAG_NAMES,
  models: MODELS_FLAG_NAMES,
  serve: SERVE_FLAG_NAMES,
  worker: WORKER_FLAG_NAMES,
};

const COMMANDS = ["batch", "video", "loss", "models", "serve", "worker", "help", "completion"];

/**
 * `stylegram serv` would otherwise be read as a photo named "serv" and get an unrelated complaint
 * about style images: a first word that is no file and is close to a command is taken for a typo.
 */
function assertNotACommandTypo(first: string): void {
  if (first.startsWith("-") || fs.existsSync(first)) return;
  const meant = closest(first, COMMANDS);
  if (meant === undefined) return;
  throw new UsageError(
    `no command "${first}" and no file of that name. Did you mean 'stylegram ${meant}'? ('stylegram help' lists the commands)`,
  );
}

/** parseArgs' message about an unknown flag, said for this CLI: the flag, a likely meaning, the file-name case. */
function parseProblem(e: Error, argv: readonly string[]): string {
  const flag = /Unknown option '([^']+)'/.exec(e.message)?.[1];
  if (flag === undefined) return e.message;
  const command = COMMANDS.includes(argv[0] ?? "") ? argv[0] : undefined;
  const known = (command === undefined ? undefined : FLAG_NAMES[command]) ?? STYLIZE_FLAG_NAMES;
  const meant = flag.startsWith("--") ? closest(flag.slice(2), known) : undefined;
  const typo = command === undefined ? closest(argv[0] ?? "", COMMANDS) : undefined;
  return [
    `unknown option ${flag}${meant ? ` (did you mean --${meant}?)` : ""}.`,
    typo && typo !== argv[0] ? ` Did you mean 'stylegram ${typo}'?` : "",
    flag.startsWith("--")
      ? ""
      : ` A file whose name starts with '-' can be given as ./${argv.find((a) => a.startsWith(flag)) ?? flag}`,
  ].join("");
}

function reportError(e: unknown, argv: readonly string[]): number {
  if (e instanceof StylegramError) {
    // The library names options; the CLI says them as its flags.
    process.stderr.write(`stylegram: ${e instanceof FlagError ? e.message : cliMessage(e)}\n`);
    return e.exitCode;
  }
  // parseArgs throws TypeErrors with a code for unknown or malformed flags.
  const code = (e as { code?: string }).code;
  if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`stylegram: ${parseProblem(e as Error, argv)}\nRun 'stylegram help' for usage.\n`);
    return 2;
  }
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(
    `stylegram: internal error: ${message}\n` +
      (process.env.STYLEGRAM_DEBUG
        ? `${(e as Error).stack}\n`
        : "(set STYLEGRAM_DEBUG=1 for details; this is a bug, please report it)\n"),
  );
  return 70;
}
