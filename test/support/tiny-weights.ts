import fs from "node:fs";
import path from "node:path";
import h5wasm from "h5wasm/node";
import { kerasLayerName } from "../../src/network/formats/keras-h5.js";
import { CONV_LAYERS } from "../../src/network/layers.js";
import { convChannels } from "../../src/network/vgg-shapes.js";
import type { VggWeights } from "../../src/network/weights.js";
import { rng } from "./random.js";

/** Block widths of a tiny VGG19 with the real layer structure, so weight files stay a few kB. */
export const TINY_WIDTHS = [2, 3, 4, 5, 5];

/**
 * Writes tiny weights in the uint8 manifest format of ../shared/models/vgg19
 * (kernel files [W, H, in, out], value = q * scale + min_value).
 */
export function writeTinyManifest(dir: string, seed = 1): void {
  fs.mkdirSync(dir, { recursive: true });
  const r = rng(seed);
  const weights: Record<string, unknown> = {};
  for (const conv of CONV_LAYERS) {
    const [cin, cout] = convChannels(conv, TINY_WIDTHS);
    for (const [part, shape] of [
      ["kernel", [3, 3, cin, cout]],
      ["bias", [cout]],
    ] as const) {
      const size = shape.reduce((a: number, b: number) => a * b, 1);
      const q = Uint8Array.from({ length: size }, () => Math.floor(r() * 256));
      const filename = `${conv}_${part}`;
      fs.writeFileSync(path.join(dir, filename), q);
      weights[`${conv}/${part}`] = {
        filename,
        shape,
        quantization: { dtype: "uint8", scale: 0.01 + r() * 0.01, min_value: -1 - r() },
      };
    }
  }
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify({ name: "tiny", weights }));
}

/**
 * Writes weights as Keras 1 wrote its VGG19 file: root attribute layer_names,
 * per-layer weight_names, datasets blockN_convM/blockN_convM_W_1:0 and _b_1:0,
 * kernels [kh, kw, in, out], conv1_1 reading B, G, R.
 */
export async function writeKerasH5(file: string, weights: VggWeights): Promise<void> {
  await h5wasm.ready;
  const f = new h5wasm.File(file, "w");
  try {
    const layers = ["input_1"];
    for (const conv of CONV_LAYERS) {
      layers.push(kerasLayerName(conv));
      if (conv.endsWith("_2") && Number(conv[4]) <= 2) layers.push(`block${conv[4]}_pool`);
      if (conv.endsWith("_4")) layers.push(`block${conv[4]}_pool`);
    }
    f.create_attribute("layer_names", layers);
    for (const layer of layers) {
      const g = f.create_group(layer);
      const conv = CONV_LAYERS.find((c) => kerasLayerName(c) === layer);
      if (!conv) {
        g.create_attribute("weight_names", [] as string[]);
        continue;
      }
      const w = weights.get(conv);
      if (!w) throw new Error(`no ${conv}`);
      const [cout, cin] = w.kernelShape;
      const stored = new Float32Array(w.kernel.length);
      for (let h = 0; h < 3; h++)
        for (let x = 0; x < 3; x++)
          for (let i = 0; i < cin; i++)
            for (let o = 0; o < cout; o++) {
              const ii = conv === "conv1_1" ? 2 - i : i;
              stored[((h * 3 + x) * cin + i) * cout + o] = w.kernel[
                ((o * cin + ii) * 3 + h) * 3 + x
              ] as number;
            }
      const names = [`${layer}_W_1:0`, `${layer}_b_1:0`];
      g.create_attribute("weight_names", names);
      g.create_dataset({ name: names[0] as string, data: stored, shape: [3, 3, cin, cout], dtype: "<f" });
      g.create_dataset({ name: names[1] as string, data: w.bias, shape: [cout], dtype: "<f" });
    }
  } finally {
    f.close();
  }
}
