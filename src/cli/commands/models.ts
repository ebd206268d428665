import fs from "node:fs";
import { parseArgs } from "node:util";
import { StylegramError, UsageError } from "../../errors.js";
import { cacheDir, cachedPath } from "../../models/cache.js";
import { checkDownloadUrl, md5File } from "../../models/fetch.js";
import { MODELS, type ModelSpec } from "../../models/registry.js";
import { fetchModel, modelUrl } from "../../models/resolve.js";
import { loadKerasH5 } from "../../network/formats/keras-h5.js";
import { downloadProgress } from "../download-progress.js";
import { exitCodeFor, type StopSignal, withStopSignals } from "../signals.js";

export const MODELS_HELP = `Usage:
  stylegram models fetch [vgg19] [--url URL] [--force]   download weights into the cache
  stylegram models list                                  what is in the cache
  stylegram models verify                                check the cached files' checksums and tensors

The cache is $STYLEGRAM_HOME, or else ~/.cache/stylegram (the XDG cache folder).
The VGG19 weights are Keras' "notop" HDF5 file, fetched from its public release
and checked against the md5 Keras pins; --url (or $STYLEGRAM_VGG19_URL) fetches
the same file from a mirror. Nothing is downloaded unless you ask for it.`;

function spec(name: string | undefined): ModelSpec {
  const s = MODELS[name ?? "vgg19"];
  if (!s) throw new UsageError(`unknown model "${name}": known models are ${Object.keys(MODELS).join(", ")}`);
  return s;
}

export const MODELS_FLAGS = {
  url: { type: "string" },
  force: { type: "boolean", short: "f" },
  help: { type: "boolean", short: "h" },
} as const;
export const MODELS_FLAG_NAMES = Object.keys(MODELS_FLAGS);

export async function modelsCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: MODELS_FLAGS,
    allowPositionals: true,
    strict: true,
  });
  const [action, name, ...extra] = positionals;
  if (values.help || action === undefined) {
    out(`${MODELS_HELP}\n`);
    return values.help ? 0 : 2;
  }
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  switch (action) {
    case "fetch": {
      const s = spec(name);
      const dest = cachedPath(s);
      if (fs.existsSync(dest) && !values.force) {
        out(
          `${s.name} is already in the cache: ${dest} (stylegram models verify checks it; --force fetches it again)\n`,
        );
        return 0;
      }
      const url = modelUrl(s, values.url);
      checkDownloadUrl(url); // before "fetching ...": a bad --url is a usage error, not a failed download
      process.stderr.write(`fetching ${s.description}\n  from ${url}\n`);
      const progress = downloadProgress(process.stderr, s.name);
      // Ctrl-C, SIGTERM or SIGHUP abort the download; fetchFile removes the partial file and its
      // error ("... interrupted; nothing was kept") is the one line printed, with the signal's exit code.
      let stoppedBy: StopSignal | undefined;
      try {
        ({ stoppedBy } = await withStopSignals(
          () => undefined,
          (signal) => fetchModel(s, { url, onProgress: progress.update, signal }),
        ));
      } finally {
        progress.end(); // so that any error starts on a line of its own
      }
      out(`${s.name}: ${dest} (md5 ${s.md5} verified)\n`);
      // A signal that came as the last byte did: the file is complete and kept, the stop still reported.
      return exitCodeFor(stoppedBy, 0);
    }
    case "list": {
      out(`cache: ${cacheDir()}\n`);
      for (const s of Object.values(MODELS)) {
        const p = cachedPath(s);
        const state = fs.existsSync(p)
          ? `${(fs.statSync(p).size / 1e6).toFixed(1)} MB, ${p}`
          : "not fetched (stylegram models fetch)";
        out(`${s.name.padEnd(8)} ${state}\n`);
      }
      return 0;
    }
    case "verify": {
      let bad = 0;
      let missing = 0;
      for (const s of name ? [spec(name)] : Object.values(MODELS)) {
        const p = cachedPath(s);
        if (!fs.existsSync(p)) {
          missing++;
          out(`${s.name}: not fetched (stylegram models fetch)\n`);
          continue;
        }
        const md5 = await md5File(p);
        if (md5 !== s.md5) {
          bad++;
          out(
            `${s.name}: CORRUPT: ${p} has md5 ${md5}, expected ${s.md5}; fetch it again with: stylegram models fetch --force\n`,
          );
          continue;
        }
        await loadKerasH5(p);
        out(`${s.name}: ok (md5 ${md5}, all 16 convolutions present with the right shapes)\n`);
      }
      if (bad > 0) throw new StylegramError(`${bad} cached model file(s) are corrupt`);
      // Nothing to verify is not a success: a script checking the cache must see it fail.
      if (missing > 0)
        throw new StylegramError(
          `nothing to verify: ${missing === 1 ? "the weights are" : `${missing} models are`} not in the cache (${cacheDir()}); fetch them with: stylegram models fetch`,
        );
      return 0;
    }
    default:
      throw new UsageError(`unknown models action "${action}": use fetch, list or verify`);
  }
}
