import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import { StylegramError } from "../src/errors.js";
import { loadKerasH5 } from "../src/network/formats/keras-h5.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import { encodeSafetensors } from "../src/network/formats/safetensors.js";
import { KERAS_VGG19_FILE, loadSafetensors, loadWeightsFrom } from "../src/network/load.js";
import type { VggWeights } from "../src/network/weights.js";
import { looksLikeCleanError, runCli } from "./support/cli.js";
import { TINY_WIDTHS, writeKerasH5, writeTinyManifest } from "./support/tiny-weights.js";

function assertSameWeights(a: VggWeights, b: VggWeights) {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, w] of a) {
    const v = b.get(name);
    assert.ok(v);
    assert.deepEqual(v.kernelShape, w.kernelShape, name);
    assert.deepEqual(v.kernel, w.kernel, `${name} kernel`);
    assert.deepEqual(v.bias, w.bias, `${name} bias`);
  }
}

describe("weight formats", () => {
  let tmp: string;
  let reference: VggWeights;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-formats-"));
    writeTinyManifest(path.join(tmp, "manifest"));
    reference = loadManifestWeights(path.join(tmp, "manifest"), TINY_WIDTHS);
    await writeKerasH5(path.join(tmp, "keras.h5"), reference);
    fs.writeFileSync(path.join(tmp, "weights.safetensors"), encodeSafetensors(reference));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test("the same weights from the manifest, Keras HDF5 and safetensors are identical after layout conversion", async () => {
    assertSameWeights(reference, await loadKerasH5(path.join(tmp, "keras.h5"), TINY_WIDTHS));
    assertSameWeights(reference, await loadSafetensors(path.join(tmp, "weights.safetensors"), TINY_WIDTHS));
    for (const p of ["manifest", "keras.h5", "weights.safetensors"]) {
      assertSameWeights(reference, await loadWeightsFrom(path.join(tmp, p), TINY_WIDTHS));
    }
  });

  test("the manifest's [W, H, in, out] and Keras' [kh, kw, in, out] with B, G, R inputs land in the same place", async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(tmp, "manifest", "manifest.json"), "utf8"));
    const entry = manifest.weights["conv1_1/kernel"];
    const q = fs.readFileSync(path.join(tmp, "manifest", entry.filename));
    const cout = TINY_WIDTHS[0] as number;
    // file[x][h][i][o] with x = 2, h = 0, i = 1 (G), o = 1 -> kernel[o][i][h][x]
    const fileValue = Math.fround(
      Math.fround((q[((2 * 3 + 0) * 3 + 1) * cout + 1] as number) * Math.fround(entry.quantization.scale)) +
        Math.fround(entry.quantization.min_value),
    );
    const conv11 = reference.get("conv1_1");
    assert.ok(conv11);
    assert.equal(conv11.kernel[((1 * 3 + 1) * 3 + 0) * 3 + 2], fileValue);
    // Keras stores it at [h=0][x=2][i][o=1] with its inputs in B, G, R order: G stays at index 1,
    // and our R input (index 0) is Keras' index 2.
    const h5 = await import("h5wasm/node");
    await h5.default.ready;
    const f = new h5.default.File(path.join(tmp, "keras.h5"), "r");
    const stored = (f.get("block1_conv1/block1_conv1_W_1:0") as InstanceType<typeof h5.default.Dataset>)
      .value as Float32Array;
    f.close();
    assert.equal(stored[((0 * 3 + 2) * 3 + 1) * cout + 1], fileValue);
    assert.equal(stored[((0 * 3 + 2) * 3 + 2) * cout + 1], conv11.kernel[((1 * 3 + 0) * 3 + 0) * 3 + 2]);
  });

  test("a cache folder holding the Keras file is recognised", async () => {
    const dir = path.join(tmp, "cache");
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(tmp, "keras.h5"), path.join(dir, KERAS_VGG19_FILE));
    assertSameWeights(reference, await loadWeightsFrom(dir, TINY_WIDTHS));
  });

  const broken: [string, (dir: string) => string, RegExp][] = [
    [
      "truncated HDF5",
      (d) => cut(d, "keras.h5", 0.5),
      /cannot be opened as HDF5 \(truncated file: eof = \d+.*\): truncated or corrupt/,
    ],
    ["damaged HDF5", (d) => damage(d, "keras.h5"), /cannot be read \(.+\): truncated or corrupt/],
    ["HDF5 of another network", (d) => copy(d, "keras.h5"), /needs \[3,3,3,64\]/],
    ["truncated safetensors", (d) => cut(d, "weights.safetensors", 0.7), /truncated/],
    ["not a weights file", (d) => write(d, "notes.txt", "hello"), /neither HDF5 \(Keras\) nor \.safetensors/],
    ["empty folder", (d) => fs.mkdtempSync(path.join(d, "empty-")), /holds neither manifest.json/],
  ];
  const cut = (d: string, name: string, fraction: number) => {
    const bytes = fs.readFileSync(path.join(d, name));
    const out = path.join(d, `cut-${fraction}-${name}`);
    fs.writeFileSync(out, bytes.subarray(0, Math.floor(bytes.length * fraction)));
    return out;
  };
  /** The file with its metadata near the start overwritten: the right length, unreadable. */
  const damage = (d: string, name: string) => {
    const bytes = fs.readFileSync(path.join(d, name));
    bytes.fill(0xff, 100, 400);
    const out = path.join(d, `damaged-${name}`);
    fs.writeFileSync(out, bytes);
    return out;
  };
  const copy = (d: string, name: string) => path.join(d, name);
  const write = (d: string, name: string, text: string) => {
    fs.writeFileSync(path.join(d, name), text);
    return path.join(d, name);
  };
  for (const [name, make, message] of broken) {
    test(`${name}: an error that names the file and the problem`, async () => {
      const file = make(tmp);
      // "HDF5 of another network": tiny weights read as the real VGG19.
      const widths = name.includes("another") ? undefined : TINY_WIDTHS;
      await assert.rejects(loadWeightsFrom(file, widths), (e: unknown) => {
        assert.ok(e instanceof StylegramError, String(e));
        assert.match(e.message, message);
        assert.ok(e.message.includes(path.basename(file)) || e.message.includes(file), e.message);
        return true;
      });
    });
  }

  test("a failed HDF5 read puts stderr back as it found it", async () => {
    const { writeSync } = fs;
    const { write } = process.stderr;
    await assert.rejects(loadKerasH5(cut(tmp, "keras.h5", 0.3), TINY_WIDTHS), StylegramError);
    assert.equal(fs.writeSync, writeSync);
    assert.equal(process.stderr.write, write);
  });

  for (const [name, make] of [
    ["truncated", (d: string) => cut(d, "keras.h5", 0.4)],
    ["damaged", (d: string) => damage(d, "keras.h5")],
  ] as const) {
    test(`the CLI given a ${name} .h5 prints one clear message and none of HDF5's own diagnostics`, async () => {
      const file = make(tmp);
      const image = path.join(tmp, "grey.png");
      await sharp({ create: { width: 8, height: 8, channels: 3, background: "#808080" } })
        .png()
        .toFile(image);
      const r = runCli(["loss", "--content", image, "--style", image, "--image", image, "--weights", file]);
      assert.ok(looksLikeCleanError(r), r.stderr);
      assert.doesNotMatch(r.stderr, /HDF5-DIAG|Aborted\(|#\d{3}:/);
      assert.match(
        r.stderr,
        new RegExp(
          `^stylegram: weights file .*${path.basename(file)}: cannot be (opened as HDF5|read) \\(.+\\): truncated or corrupt\n$`,
        ),
      );
    });
  }
});
