/**
 * The package as a user gets it: packed with `npm pack`, installed from the
 * tarball the way the README says (globally, and as a dependency of a
 * TypeScript project), and run from folders outside the clone.
 */
import assert from "node:assert/strict";
import { type SpawnSyncOptions, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { builtIsFresh } from "./support/cli-entry.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TSC = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
const shared = needsShared();

/**
 * The environment of a user's shell: `npm test` exports the project's npm
 * config (its .npmrc's onnxruntime-node-install=skip among it) as npm_* variables,
 * which would hide exactly what this test is for.
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === "INIT_CWD" || k === "ONNXRUNTIME_NODE_INSTALL") continue;
    env[k] = v;
  }
  return { ...env, STYLEGRAM_DEBUG: "", ...extra };
}

function run(cmd: string, args: string[], options: SpawnSyncOptions & { cwd: string }) {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 300_000, ...options });
  const out = { code: r.status ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  return { ...out, say: `${cmd} ${args.join(" ")} -> ${out.code}\n${out.stdout}\n${out.stderr}` };
}

/**
 * The README's install line: --ignore-scripts skips onnxruntime-node's CUDA download (stylegram
 * needs no install script of any dependency), on npm 10 and 11 alike.
 */
const INSTALL = ["--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"];

/** An install on a supported Node warns of nothing: no unsupported engine, no skipped script. */
function assertQuietInstall(r: { stderr: string; say: string }): void {
  assert.doesNotMatch(r.stderr, /EBADENGINE|install-scripts|deprecated/, r.say);
}

describe("npm pack, then install and run as a user", shared, () => {
  let tmp: string;
  let tarball: string;
  let packed: { path: string; size: number }[];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-install-"));
    // The build is npm ci's (prepare); packing must not rebuild dist/, which other test files run
    // at the same time.
    assert.ok(builtIsFresh(), "dist/ is older than src/: run npm run build (npm ci does)");
    const r = run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], {
      cwd: ROOT,
      env: userEnv(),
    });
    assert.equal(r.code, 0, r.say);
    const info = JSON.parse(r.stdout.slice(r.stdout.indexOf("["))) as {
      filename: string;
      files: { path: string; size: number }[];
    }[];
    tarball = path.join(tmp, (info[0] as { filename: string }).filename);
    packed = (info[0] as { files: { path: string; size: number }[] }).files;
    // Tiny pictures of the user's own, in a folder that is not the clone.
    fs.mkdirSync(path.join(tmp, "pictures"));
    const noise = (seed: number) =>
      Buffer.from(
        Array.from({ length: 40 * 32 * 3 }, (_, i) => (i * 37 + seed * 101 + ((i * i) % 53)) % 256),
      );
    await sharp(noise(1), { raw: { width: 40, height: 32, channels: 3 } })
      .png()
      .toFile(path.join(tmp, "pictures", "photo.png"));
    await sharp(noise(2), { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toFile(path.join(tmp, "pictures", "painting.png"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test("the tarball holds the built library, its types, the command and the web page, and nothing else", () => {
    const paths = packed.map((f) => f.path);
    for (const needed of [
      "bin/stylegram.js",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/cli/run.js",
      "dist/server/app.js",
      // The page `stylegram serve` serves, built with uPlot inside: nothing is fetched from elsewhere.
      "dist/web/index.html",
      "dist/web/app.js",
      "dist/web/app.css",
      // stylegram/browser: the module and its worker (onnxruntime-web's wasm comes from its own package).
      "dist/browser/stylegram-browser.js",
      "dist/browser/stylegram-worker.js",
    ]) {
      assert.ok(paths.includes(needed), `${needed} is missing from the package`);
    }
    assert.ok(paths.includes("README.md") && paths.includes("LICENSE") && paths.includes("package.json"));
    const stray = paths.filter(
      (p) => !/^(bin|dist)\//.test(p) && !["README.md", "LICENSE", "package.json"].includes(p),
    );
    assert.deepEqual(stray, [], "files outside bin/ and dist/");
    // Source maps would point at src/, which is not shipped; data never is.
    assert.deepEqual(
      paths.filter((p) => /\.(map|png|jpe?g|h5|bin|safetensors|onnx)$/.test(p)),
      [],
    );
    // The browser's worker is the whole run in one module (the graph builder, its ONNX encoder,
    // the option checks, onnxruntime-web's JavaScript): code, not data, and still under 1 MB.
    const bundle = (p: string) => /^dist\/browser\/stylegram-(browser|worker)\.js$/.test(p);
    const big = packed.filter((f) => f.size > (bundle(f.path) ? 1_000_000 : 200_000));
    assert.deepEqual(big, [], "no file of the package should be large");
  });

  describe("npm install -g of the tarball", () => {
    let prefix: string;
    let elsewhere: string;
    const stylegram = (args: string[], extra: Record<string, string> = {}) =>
      run("stylegram", args, {
        cwd: elsewhere,
        env: userEnv({
          PATH: `${path.join(prefix, "bin")}${path.delimiter}${process.env.PATH}`,
          STYLEGRAM_HOME: path.join(tmp, "cache"),
          ...extra,
        }),
      });

    before(() => {
      prefix = path.join(tmp, "global");
      elsewhere = path.join(tmp, "pictures");
      const r = run("npm", ["install", "-g", "--prefix", prefix, tarball, ...INSTALL], {
        cwd: tmp,
        env: userEnv(),
      });
      assert.equal(r.code, 0, r.say);
      assertQuietInstall(r);
    });

    test("installs no CUDA files", () => {
      const bin = path.join(
        prefix,
        "lib",
        "node_modules",
        "stylegram",
        "node_modules",
        "onnxruntime-node",
        "bin",
        "napi-v6",
        "linux",
        "x64",
      );
      assert.ok(fs.existsSync(path.join(bin, "onnxruntime_binding.node")), "the CPU binding is there");
      assert.deepEqual(
        fs.readdirSync(bin).filter((f) => /cuda|tensorrt|providers_shared/.test(f)),
        [],
      );
    });

    test("stylegram --version and models list work from any folder", () => {
      const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
      const v = stylegram(["--version"]);
      assert.equal(v.code, 0, v.say);
      assert.equal(v.stdout.trim(), `stylegram ${pkg.version}`);
      const list = stylegram(["models", "list"]);
      assert.equal(list.code, 0, list.say);
      assert.match(list.stdout, new RegExp(`cache: ${path.join(tmp, "cache")}`));
      assert.match(list.stdout, /vgg19\s+not fetched \(stylegram models fetch\)/);
    });

    test("stylegram serve from any folder serves its page, script and API", async () => {
      const child = spawn("stylegram", ["serve", "--port", "0", "--weights", WEIGHTS_DIR], {
        cwd: elsewhere,
        env: userEnv({ PATH: `${path.join(prefix, "bin")}${path.delimiter}${process.env.PATH}` }),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on("data", (c: Buffer) => {
        err += c.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
      try {
        const url = await new Promise<string>((resolve, reject) => {
          const timer = setInterval(() => {
            const m = /open (http:\/\/\S+)/.exec(out);
            if (m) {
              clearInterval(timer);
              resolve(m[1] as string);
            }
          }, 50);
          void exited.then(() => {
            clearInterval(timer);
            reject(new Error(`serve exited: ${err}`));
          });
        });
        const page = await fetch(url);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /<script type="module" src="app.js">/);
        const script = await fetch(`${url}app.js`);
        assert.equal(script.status, 200);
        assert.match(await script.text(), /uPlot|uplot/);
        assert.equal((await fetch(`${url}api/options`)).status, 200);
      } finally {
        child.kill("SIGTERM");
        assert.equal(await exited, 0, err);
      }
    });

    test("a tiny stylization and a tiny loss run with the shared weights", async () => {
      const r = stylegram([
        "photo.png",
        "painting.png",
        "-o",
        "painted.png",
        "--size",
        "48",
        "--iterations",
        "3",
        "--weights",
        WEIGHTS_DIR,
      ]);
      assert.equal(r.code, 0, r.say);
      const meta = await sharp(path.join(elsewhere, "painted.png")).metadata();
      assert.deepEqual([meta.width, meta.height], [48, 38]);
      const loss = stylegram([
        "loss",
        "--content",
        "photo.png",
        "--style",
        "painting.png",
        "--image",
        "painted.png",
        "--weights",
        WEIGHTS_DIR,
      ]);
      // painted.png is 48x38 and the photo 40x32: the size check speaks first, through the installed command.
      assert.equal(loss.code, 1, loss.say);
      assert.match(
        loss.stderr,
        /48x38 but the content image is 40x32: .*make the picture at the photo.s size \(--size 40\)/,
      );
      const same = stylegram([
        "loss",
        "--content",
        "photo.png",
        "--style",
        "painting.png",
        "--image",
        "photo.png",
        "--weights",
        WEIGHTS_DIR,
      ]);
      assert.equal(same.code, 0, same.say);
      const terms = JSON.parse(same.stdout) as { total: number; content: Record<string, number> };
      assert.equal(terms.content.relu4_2, 0, "the photo against itself has no content loss");
      assert.ok(Number.isFinite(terms.total) && terms.total > 0, same.stdout);
    });
  });

  test("a strict TypeScript project imports stylegram by name, type-checks and stylizes", async () => {
    const app = path.join(tmp, "consumer");
    fs.mkdirSync(app);
    fs.writeFileSync(
      path.join(app, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    const install = run("npm", ["install", tarball, ...INSTALL], { cwd: app, env: userEnv() });
    assert.equal(install.code, 0, install.say);
    assertQuietInstall(install);
    fs.writeFileSync(
      path.join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          skipLibCheck: false,
          outDir: "out",
          // A user would install @types/node; the clone's copy serves here.
          typeRoots: [path.join(ROOT, "node_modules", "@types")],
          types: ["node"],
        },
        files: ["main.ts"],
      }),
    );
    // The @ts-expect-error lines fail the build if the published types are missing or loose (any).
    fs.writeFileSync(
      path.join(app, "main.ts"),
      `import { type RgbImage, type StylizeOptions, saveImage, stylize, StylegramError, VERSION } from "stylegram";

const photo: RgbImage = { width: 40, height: 32, data: new Uint8Array(40 * 32 * 3).map((_, i) => (i * 7) % 256) };
const painting: RgbImage = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).map((_, i) => (i * 13) % 256) };
const options: StylizeOptions = {
  content: photo,
  styles: [painting],
  size: 40,
  iterations: 3,
  weights: process.argv[2] as string,
  onProgress: (p) => {
    const n: number = p.iteration;
    void n;
  },
};
// @ts-expect-error styles is a list of images, not one path
const wrong: StylizeOptions = { content: photo, styles: "painting.png" };
void wrong;
// @ts-expect-error the result's image has no 'pixels'
const nope = async () => (await stylize(options)).image.pixels;
void nope;
const result = await stylize(options);
await saveImage(process.argv[3] as string, result.image);
console.log(JSON.stringify({ version: VERSION, width: result.image.width, height: result.image.height,
  iterations: result.iterations, errorClass: StylegramError.name }));
`,
    );
    const tsc = run(process.execPath, [TSC, "-p", app], { cwd: app, env: userEnv() });
    assert.equal(tsc.code, 0, tsc.say);
    const out = path.join(app, "result.png");
    const r = run(process.execPath, [path.join(app, "out", "main.js"), WEIGHTS_DIR, out], {
      cwd: app,
      env: userEnv(),
    });
    assert.equal(r.code, 0, r.say);
    const summary = JSON.parse(r.stdout) as { width: number; height: number; iterations: number };
    assert.deepEqual([summary.width, summary.height, summary.iterations], [40, 32, 3]);
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.width, meta.height], [40, 32]);
  });
});
