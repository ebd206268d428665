import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { StylegramError } from "../src/errors.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

const shared = needsShared();

describe("uint8 manifest weights", shared, () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-weights-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** A copy of the real weights folder, altered by `change`. */
  const variant = (name: string, change: (dir: string) => void) => {
    const dir = path.join(tmp, name);
    fs.cpSync(WEIGHTS_DIR, dir, { recursive: true });
    fs.chmodSync(dir, 0o755);
    for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
    change(dir);
    return dir;
  };
  const manifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));

  test("kernels are converted from [W, H, in, out] to [out, in, H, W] and dequantised", () => {
    const w = loadManifestWeights(WEIGHTS_DIR);
    assert.equal(w.size, 16);
    const conv = w.get("conv2_1");
    assert.ok(conv);
    assert.deepEqual(conv.kernelShape, [128, 64, 3, 3]);
    const entry = manifest(WEIGHTS_DIR).weights["conv2_1/kernel"];
    const q = fs.readFileSync(path.join(WEIGHTS_DIR, entry.filename));
    const { scale, min_value } = entry.quantization;
    for (const [o, i, h, x] of [
      [0, 0, 0, 0],
      [5, 2, 0, 1],
      [127, 63, 2, 1],
      [17, 40, 1, 2],
    ] as const) {
      const expected = Math.fround((q[((x * 3 + h) * 64 + i) * 128 + o] as number) * scale + min_value);
      const got = conv.kernel[((o * 64 + i) * 3 + h) * 3 + x] as number;
      assert.ok(Math.abs(got - expected) < 1e-6, `w[${o}][${i}][${h}][${x}] = ${got}, expected ${expected}`);
    }
    assert.equal(conv.bias.length, 128);
  });

  const broken: [string, (dir: string) => void, RegExp][] = [
    ["no manifest", (d) => fs.rmSync(path.join(d, "manifest.json")), /has no manifest.json/],
    [
      "manifest not JSON",
      (d) => fs.writeFileSync(path.join(d, "manifest.json"), "{oops"),
      /is not valid JSON/,
    ],
    [
      "missing tensor file",
      (d) => fs.rmSync(path.join(d, "conv3_2_kernel")),
      /weights file .*conv3_2_kernel \(conv3_2\/kernel\) is missing/,
    ],
    [
      "truncated tensor file",
      (d) => fs.truncateSync(path.join(d, "conv4_1_kernel"), 1000),
      /conv4_1_kernel \(conv4_1\/kernel\) has 1000 bytes where 1179648 are expected/,
    ],
    [
      "corrupt tensor file",
      (d) => {
        const f = path.join(d, "conv1_2_bias");
        const b = fs.readFileSync(f);
        b[3] = ((b[3] as number) + 1) % 256;
        fs.writeFileSync(f, b);
      },
      /conv1_2_bias \(conv1_2\/bias\) is corrupt: md5/,
    ],
    [
      "wrong shape in the manifest",
      (d) => {
        const m = manifest(d);
        m.weights["conv5_1/kernel"].shape = [3, 3, 256, 512];
        fs.writeFileSync(path.join(d, "manifest.json"), JSON.stringify(m));
      },
      /conv5_1\/kernel has shape \[3,3,256,512\] where VGG19 needs \[3,3,512,512\]/,
    ],
    [
      "tensor missing from the manifest",
      (d) => {
        const m = manifest(d);
        delete m.weights["conv2_2/bias"];
        fs.writeFileSync(path.join(d, "manifest.json"), JSON.stringify(m));
      },
      /no entry for conv2_2\/bias/,
    ],
  ];
  for (const [name, change, message] of broken) {
    test(`${name}: an error that names the problem`, () => {
      const dir = variant(name.replace(/\W+/g, "-"), change);
      assert.throws(
        () => loadManifestWeights(dir),
        (e: unknown) => e instanceof StylegramError && message.test(e.message),
      );
    });
  }
});
