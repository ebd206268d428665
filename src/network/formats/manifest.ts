import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { StylegramError } from "../../errors.js";
import { CONV_LAYERS } from "../layers.js";
import { convChannels, VGG19_WIDTHS } from "../vgg-shapes.js";
import type { ConvWeights, VggWeights } from "../weights.js";

interface ManifestEntry {
  filename: string;
  shape: number[];
  checksum?: string;
  quantization?: { dtype: string; scale: number; min_value: number };
}

function fail(message: string): never {
  throw new StylegramError(message);
}

function readManifest(dir: string): Record<string, ManifestEntry> {
  const file = path.join(dir, "manifest.json");
  if (!fs.existsSync(file)) {
    fail(
      `weights folder ${dir} has no manifest.json: it is not a VGG19 weights folder in the uint8 manifest format`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    fail(`weights manifest ${file} is not valid JSON (${(e as Error).message})`);
  }
  const weights = (doc as { weights?: unknown }).weights;
  if (typeof weights !== "object" || weights === null)
    fail(`weights manifest ${file} has no "weights" object`);
  return weights as Record<string, ManifestEntry>;
}

/** Reads one tensor file, checking its size and checksum, and dequantises it to float32. */
function readTensor(
  dir: string,
  key: string,
  entry: ManifestEntry | undefined,
  shape: readonly number[],
): Float32Array {
  if (!entry) fail(`weights manifest in ${dir} has no entry for ${key}`);
  const q = entry.quantization;
  if (q?.dtype !== "uint8" || !Number.isFinite(q.scale) || !Number.isFinite(q.min_value)) {
    fail(`weights manifest in ${dir}: ${key} is not uint8-quantised with a numeric scale and min_value`);
  }
  const got = entry.shape;
  if (!Array.isArray(got) || got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
    fail(`weights in ${dir}: ${key} has shape [${got}] where VGG19 needs [${shape.join(",")}]`);
  }
  const file = path.join(dir, entry.filename);
  if (!fs.existsSync(file)) fail(`weights file ${file} (${key}) is missing`);
  const bytes = fs.readFileSync(file);
  const expected = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== expected) {
    fail(
      `weights file ${file} (${key}) has ${bytes.length} bytes where ${expected} are expected: truncated or wrong file`,
    );
  }
  if (entry.checksum) {
    const md5 = createHash("md5").update(bytes).digest("hex");
    if (md5 !== entry.checksum)
      fail(`weights file ${file} (${key}) is corrupt: md5 ${md5}, manifest says ${entry.checksum}`);
  }
  // value = q * scale + min_value, in float32 arithmetic as the reference computes it.
  const scale = Math.fround(q.scale);
  const min = Math.fround(q.min_value);
  const out = new Float32Array(expected);
  for (let i = 0; i < expected; i++) out[i] = Math.fround((bytes[i] as number) * scale) + min;
  return out;
}

/**
 * Loads VGG19 from the uint8 manifest format (see shared/models/vgg19/FORMAT.md):
 * kernel files laid out [W, H, in, out], converted here to [out, in, H, W].
 */
export function loadManifestWeights(dir: string, widths: readonly number[] = VGG19_WIDTHS): VggWeights {
  if (!fs.existsSync(dir)) fail(`weights folder ${dir} does not exist`);
  if (!fs.statSync(dir).isDirectory()) fail(`weights path ${dir} is not a folder`);
  const manifest = readManifest(dir);
  const result = new Map<string, ConvWeights>();
  for (const name of CONV_LAYERS) {
    const [cin, cout] = convChannels(name, widths);
    const file = readTensor(dir, `${name}/kernel`, manifest[`${name}/kernel`], [3, 3, cin, cout]);
    const bias = readTensor(dir, `${name}/bias`, manifest[`${name}/bias`], [cout]);
    const kernel = new Float32Array(file.length);
    // file[x][h][i][o] -> kernel[o][i][h][x]
    for (let x = 0; x < 3; x++)
      for (let h = 0; h < 3; h++)
        for (let i = 0; i < cin; i++) {
          const src = ((x * 3 + h) * cin + i) * cout;
          for (let o = 0; o < cout; o++) kernel[((o * cin + i) * 3 + h) * 3 + x] = file[src + o] as number;
        }
    result.set(name, { kernel, kernelShape: [cout, cin, 3, 3], bias });
  }
  return result;
}
