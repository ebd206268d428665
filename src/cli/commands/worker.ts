import { parseArgs } from "node:util";
import { UsageError } from "../../errors.js";
import { weightsFromFlags } from "../objective-flags.js";
import { joinNegativeValues, parseCount, parseNumber, valueFlags } from "../parse.js";
import { withStopSignals } from "../signals.js";

export const WORKER_HELP = `Usage: stylegram worker --queue redis://HOST:PORT [--concurrency 1]

Runs the jobs of 'stylegram serve --queue' on this machine: takes them from the
Redis queue, each in a process of its own, and writes their progress, preview
frames and results back for the servers to show. Start one on every machine
that should compute (each needs the weights); docs/deploy.md sets up a fleet.

Options:
  --queue URL             the Redis queue, the same as the server's:
                          redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS)
  --concurrency N         jobs at once, each in its own process (default 1)
  --threads N             compute threads of all its jobs together (default: the cores)
  --name NAME             this worker's name in /metrics and the logs (default HOST-PID)
  --checkpoint-every S    seconds between two checkpoints of a running job, the most
                          work a crash loses (default 10)
  --takeover-after S      seconds after which the jobs of a worker that stopped
                          answering (killed, its machine gone) go to another (default 30)
  --weights PATH          VGG19 weights: a folder, a Keras .h5 or a .safetensors file
                          (default: $STYLEGRAM_WEIGHTS, else the cache of 'stylegram models fetch')
  --fetch                 download the weights into the cache first if they are missing

Ctrl-C or SIGTERM hands the running jobs back at once: each keeps its latest
picture as a checkpoint and goes back to the head of the line, where another
worker resumes it. A second Ctrl-C exits at once (the job is taken over later).

Examples:
  stylegram worker --queue redis://10.0.0.5:6379
  stylegram worker --queue redis://:secret@queue.lan:6379/2 --concurrency 2 --threads 16`;

export const WORKER_FLAGS = {
  queue: { type: "string" },
  concurrency: { type: "string" },
  threads: { type: "string" },
  name: { type: "string" },
  "checkpoint-every": { type: "string" },
  "takeover-after": { type: "string" },
  weights: { type: "string" },
  fetch: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export const WORKER_FLAG_NAMES = Object.keys(WORKER_FLAGS);

/** A number of seconds > 0 (fractions allowed: tests use short ones). */
function seconds(flag: string, text: string | undefined, min: number): number | undefined {
  const v = parseNumber(flag, text);
  if (v !== undefined && !(v >= min))
    throw new UsageError(`${flag} expects seconds >= ${min}, got "${text}"`);
  return v;
}

export async function workerCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(argv, valueFlags(WORKER_FLAGS)),
    options: WORKER_FLAGS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(`${WORKER_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) {
    throw new UsageError(
      `worker takes no file arguments (got ${positionals[0]}): it takes its jobs from --queue`,
    );
  }
  if (values.queue === undefined) {
    throw new UsageError(
      "worker needs --queue redis://HOST:PORT: the Redis queue that 'stylegram serve --queue' puts the jobs on",
    );
  }
  // Imported here, so that the other commands do not load BullMQ.
  const { parseQueueUrl } = await import("../../queue/connection.js");
  const address = parseQueueUrl(values.queue);
  const concurrency = parseCount("--concurrency", values.concurrency) ?? 1;
  const threads = parseCount("--threads", values.threads);
  const checkpointSeconds = seconds("--checkpoint-every", values["checkpoint-every"], 0) ?? 10;
  const takeoverSeconds = seconds("--takeover-after", values["takeover-after"], 1) ?? 30;
  if (values.name !== undefined && !/^[\w.-]{1,64}$/.test(values.name)) {
    throw new UsageError(
      `--name expects letters, digits, '.', '-' or '_' (at most 64), got "${values.name.slice(0, 80)}"`,
    );
  }

  const log = (line: string) =>
    process.stderr.write(`${new Date().toISOString().slice(0, 19).replace("T", " ")} ${line}\n`);
  const { value } = await withStopSignals(
    (sig) =>
      process.stderr.write(
        `stopping (${sig === "SIGINT" ? "Ctrl-C" : sig}): handing the running jobs back to the queue\n`,
      ),
    async (signal) => {
      process.stderr.write("loading the VGG19 weights\n");
      const weights = await weightsFromFlags(values, signal);
      const { QueueWorker } = await import("../../queue/worker.js");
      const worker = new QueueWorker({
        address,
        weights,
        concurrency,
        ...(threads === undefined ? {} : { threads }),
        ...(values.name === undefined ? {} : { name: values.name }),
        checkpointMs: checkpointSeconds * 1000,
        takeoverMs: takeoverSeconds * 1000,
        log,
      });
      const waiting = setTimeout(
        () => log(`still waiting for Redis at ${address.shown}: is it running, and is the address right?`),
        10_000,
      );
      await worker.start();
      clearTimeout(waiting);
      out(
        `stylegram worker ${worker.name}: taking jobs from ${address.shown}, ${concurrency} at a time (Ctrl-C hands them back)\n`,
      );
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener("abort", () => resolve(), { once: true });
      });
      await worker.handBack();
      process.stderr.write("stopped: no job is left running here\n");
      return 0;
    },
  );
  return value;
}
