import fs from "node:fs";
import { StylegramError } from "../../errors.js";
import { CONV_LAYERS } from "../layers.js";
import { convChannels, VGG19_WIDTHS } from "../vgg-shapes.js";
import type { ConvWeights, VggWeights } from "../weights.js";

/** Keras' name for one of our convolutions: conv3_2 -> block3_conv2. */
export function kerasLayerName(conv: string): string {
  return `block${conv[4]}_conv${conv[6]}`;
}

function text(v: unknown): string {
  return typeof v === "string" ? v : v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v);
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(text) : typeof v === "string" ? [v] : [];
}

/** The first bytes of every HDF5 file. */
export const HDF5_SIGNATURE = Uint8Array.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Loads VGG19 from a Keras HDF5 weights file, such as Keras' "notop" VGG19
 * file, through Keras' own convention: the root attribute `layer_names`, each
 * layer group's `weight_names` (kernel then bias). Kernels are stored
 * [kh, kw, in, out] and conv1_1 reads B, G, R (Caffe's order): both are
 * converted to our [out, in, kh, kw] and R, G, B.
 */
export async function loadKerasH5(
  file: string,
  widths: readonly number[] = VGG19_WIDTHS,
): Promise<VggWeights> {
  const fail = (what: string): never => {
    throw new StylegramError(`weights file ${file}: ${what}`);
  };
  const head = new Uint8Array(8);
  const fd = fs.openSync(file, "r");
  try {
    fs.readSync(fd, head, 0, 8, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (!head.every((b, i) => b === HDF5_SIGNATURE[i])) fail("is not an HDF5 file");

  // Loaded only when an HDF5 file is read: merely importing h5wasm was measured to raise the
  // peak RSS of a later 256 px evaluation from 725 to 1280 MiB.
  const h5wasm = (await import("h5wasm/node")).default;
  await h5wasm.ready;
  return withHdf5Diagnostics((reason) => readKerasH5(h5wasm, file, widths, fail, reason));
}

type H5wasm = typeof import("h5wasm/node").default;
/** Why HDF5 failed, in a few words, for a message that goes on to say "truncated or corrupt". */
type Reason = (e?: unknown) => string;

/**
 * Runs `body` (synchronous) with stderr captured. On a damaged file HDF5 prints its whole error
 * stack (dozens of "HDF5-DIAG" lines) and emscripten may print "Aborted(...)", before any message
 * of ours. h5wasm writes the first straight to file descriptor 2 with fs.writeSync (its NODERAWFS
 * file system) and the second with console.error, both synchronously, so what reaches stderr
 * during this call is theirs alone. `reason` picks the root cause out of it for our one clear
 * message; STYLEGRAM_DEBUG=1 still shows it all. (h5wasm's throwing error handler would silence
 * HDF5 too, but it throws through HDF5's C code and leaks the ids that keep a damaged file open:
 * a later open of the same file then reads HDF5's stale copy of it.)
 */
function withHdf5Diagnostics<T>(body: (reason: Reason) => T): T {
  const debug = Boolean(process.env.STYLEGRAM_DEBUG);
  const { writeSync } = fs;
  const stderr = process.stderr;
  const { write } = stderr;
  let captured = "";
  const writeSyncMuted = (fd: number, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]): number => {
    if (fd !== 2 || debug) return Reflect.apply(writeSync, fs, [fd, data, ...rest]) as number;
    if (typeof data === "string") {
      captured += data;
      return Buffer.byteLength(data);
    }
    // (fd, buffer, offset?, length?, position?), as emscripten calls it.
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const offset = typeof rest[0] === "number" ? rest[0] : 0;
    const length = typeof rest[1] === "number" ? rest[1] : bytes.length - offset;
    captured += Buffer.from(bytes.subarray(offset, offset + length)).toString();
    return length;
  };
  const writeMuted = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    if (debug) return Reflect.apply(write, stderr, [chunk, ...rest]) as boolean;
    captured += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    return true;
  };
  fs.writeSync = writeSyncMuted as typeof fs.writeSync;
  stderr.write = writeMuted as typeof stderr.write;
  try {
    return body((e) => hdf5Reason(captured, e));
  } finally {
    fs.writeSync = writeSync;
    stderr.write = write;
  }
}

/**
 * The root cause HDF5 printed: the deepest frame of its first error stack, such as "truncated
 * file: eof = 16606, ...". Otherwise the exception's own message.
 */
export function hdf5Reason(diagnostics: string, e?: unknown): string {
  const first = diagnostics.split("HDF5-DIAG")[1] ?? "";
  const causes = [...first.matchAll(/#\d+: .* in [\w.]+\(\): (.+)$/gm)].map((m) => (m[1] as string).trim());
  const message = e instanceof Error ? e.message.split("\n")[0] : e === undefined ? undefined : String(e);
  return causes.at(-1) ?? message ?? "unreadable";
}

function readKerasH5(
  h5wasm: H5wasm,
  file: string,
  widths: readonly number[],
  fail: (what: string) => never,
  reason: Reason,
): VggWeights {
  let h5: InstanceType<typeof h5wasm.File>;
  try {
    h5 = new h5wasm.File(file, "r");
  } catch (e) {
    return fail(`cannot be opened as HDF5 (${reason(e)}): truncated or corrupt`);
  }
  // h5wasm does not throw when HDF5 cannot open a file: it hands back a negative id.
  if (h5.file_id < 0n) return fail(`cannot be opened as HDF5 (${reason()}): truncated or corrupt`);
  try {
    const layerNames = strings(h5.attrs.layer_names?.value);
    if (layerNames.length === 0) fail('has no "layer_names" attribute: not a Keras weights file');
    const result = new Map<string, ConvWeights>();
    for (const conv of CONV_LAYERS) {
      const layer = kerasLayerName(conv);
      if (!layerNames.includes(layer)) fail(`has no layer ${layer} (${conv}): not VGG19 weights`);
      const group = h5.get(layer);
      if (!(group instanceof h5wasm.Group)) return fail(`layer ${layer} is not a group`);
      const weightNames = strings(group.attrs.weight_names?.value);
      if (weightNames.length !== 2)
        fail(`layer ${layer} should list 2 weights (kernel, bias), lists ${weightNames.length}`);
      const [cin, cout] = convChannels(conv, widths);
      const read = (name: string, shape: number[]): Float32Array => {
        let ds: unknown;
        try {
          ds = h5.get(`${layer}/${name}`) ?? group.get(name);
        } catch (e) {
          return fail(`tensor ${layer}/${name} cannot be read (${reason(e)}): truncated or corrupt`);
        }
        if (!(ds instanceof h5wasm.Dataset)) return fail(`tensor ${layer}/${name} is missing`);
        const got = ds.shape ?? [];
        if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
          fail(`tensor ${layer}/${name} has shape [${got.join(",")}] where VGG19 needs [${shape.join(",")}]`);
        }
        let value: unknown;
        try {
          value = ds.value;
        } catch (e) {
          return fail(`tensor ${layer}/${name} cannot be read (${reason(e)}): truncated or corrupt`);
        }
        if (!(value instanceof Float32Array || value instanceof Float64Array)) {
          return fail(`tensor ${layer}/${name} is not floating point`);
        }
        return value instanceof Float32Array ? value : Float32Array.from(value);
      };
      const stored = read(weightNames[0] as string, [3, 3, cin, cout]);
      const bias = read(weightNames[1] as string, [cout]);
      const kernel = new Float32Array(stored.length);
      const bgr = conv === "conv1_1";
      // stored[h][x][i][o] -> kernel[o][i'][h][x], with i' = 2 - i for conv1_1's B, G, R inputs.
      for (let h = 0; h < 3; h++)
        for (let x = 0; x < 3; x++)
          for (let i = 0; i < cin; i++) {
            const src = ((h * 3 + x) * cin + i) * cout;
            const ii = bgr ? 2 - i : i;
            for (let o = 0; o < cout; o++)
              kernel[((o * cin + ii) * 3 + h) * 3 + x] = stored[src + o] as number;
          }
      result.set(conv, { kernel, kernelShape: [cout, cin, 3, 3], bias });
    }
    return result;
  } catch (e) {
    if (e instanceof StylegramError) throw e;
    // h5wasm reports a damaged file as whatever part of it it failed to read.
    return fail(`cannot be read (${reason(e)}): truncated or corrupt`);
  } finally {
    // A damaged file can fail to close too; what went wrong was reported above.
    try {
      h5.close();
    } catch {
      // Nothing more to report.
    }
  }
}
