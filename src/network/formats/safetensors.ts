import { StylegramError } from "../../errors.js";
import { CONV_LAYERS } from "../layers.js";
import { convChannels, VGG19_WIDTHS } from "../vgg-shapes.js";
import type { ConvWeights, VggWeights } from "../weights.js";

// The safetensors format is an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}}, then the raw tensor bytes.
// It is read and written here by hand: twenty lines, where the npm packages for
// it are young or unmaintained. Tensors are named `conv1_1.weight` [out, in, kh, kw]
// (RGB inputs) and `conv1_1.bias`, as PyTorch names a module's parameters.
// Bytes in, bytes out, nothing of Node's: the file loader (load.ts) and a browser share it.

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/**
 * VGG19's weights from safetensors bytes; `source` names them in errors (a file, a URL).
 * Each tensor's shape and length are checked against the network's.
 */
export function parseSafetensors(
  bytes: Uint8Array,
  source: string,
  widths: readonly number[] = VGG19_WIDTHS,
): VggWeights {
  const fail = (what: string): never => {
    throw new StylegramError(`weights file ${source}: ${what}`);
  };
  if (bytes.length < 8) fail("is too short to be a safetensors file");
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > bytes.length - 8 || headerLength > 100_000_000)
    fail("has a header longer than the file: truncated or not safetensors");
  let header: Record<string, HeaderEntry>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    return fail("has no valid JSON header: not a safetensors file");
  }
  const dataStart = 8 + headerLength;
  const tensor = (name: string, shape: readonly number[]): Float32Array => {
    const e = header[name];
    if (!e) return fail(`has no tensor ${name}`);
    if (e.dtype !== "F32") fail(`tensor ${name} is ${e.dtype}; float32 (F32) is expected`);
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      fail(`tensor ${name} has shape [${e.shape.join(",")}] where VGG19 needs [${shape.join(",")}]`);
    }
    const [begin, end] = e.data_offsets;
    const expected = shape.reduce((a, b) => a * b, 1) * 4;
    if (end - begin !== expected)
      fail(`tensor ${name} has ${end - begin} bytes where ${expected} are expected`);
    if (dataStart + end > bytes.length) fail(`tensor ${name} ends past the end of the file: truncated`);
    // Copy into an aligned buffer of its own: the data offset need not be a multiple of 4 (and a
    // Node Buffer's slice() is a view, not a copy).
    return new Float32Array(new Uint8Array(bytes.subarray(dataStart + begin, dataStart + end)).buffer);
  };
  const result = new Map<string, ConvWeights>();
  for (const conv of CONV_LAYERS) {
    const [cin, cout] = convChannels(conv, widths);
    result.set(conv, {
      kernel: tensor(`${conv}.weight`, [cout, cin, 3, 3]),
      kernelShape: [cout, cin, 3, 3],
      bias: tensor(`${conv}.bias`, [cout]),
    });
  }
  return result;
}

/** The weights as safetensors bytes (for `stylegram models export`, the server's browser page, tests). */
export function encodeSafetensors(weights: VggWeights): Uint8Array {
  const header: Record<string, HeaderEntry | Record<string, string>> = { __metadata__: { format: "pt" } };
  const parts: Float32Array[] = [];
  let offset = 0;
  for (const [conv, w] of weights) {
    const entries: [string, Float32Array, number[]][] = [
      [`${conv}.weight`, w.kernel, [...w.kernelShape]],
      [`${conv}.bias`, w.bias, [w.bias.length]],
    ];
    for (const [name, data, shape] of entries) {
      header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + data.byteLength] };
      parts.push(data);
      offset += data.byteLength;
    }
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  return out;
}
