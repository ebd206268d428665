/**
 * stylegram/browser in Debian's chromium (headless, WebGPU on: SwiftShader's adapter where there is
 * no GPU), from a page of `stylegram serve`: computeLoss() against Node's CPU numbers on WebGPU and on
 * wasm, stylize() on both, abort, the weights' digest and cache, the page's "Compute on: this browser"
 * end to end (nothing posted to the API), and the static site of build:site on a plain file server.
 * One browser for the file; tiny pictures (32-64 px), few iterations and few layers, since WebGPU on
 * SwiftShader spends seconds compiling each graph's shaders.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import sharp from "sharp";
import { buildSite } from "../scripts/build-site.js";
import { computeLoss } from "../src/api/loss.js";
import type * as Stylegram from "../src/browser/index.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { VggWeights } from "../src/network/weights.js";
import { buildServer, type StylegramServer } from "../src/server/app.js";
import { browserFilesProblem, WEIGHTS_FILE } from "../src/server/browser-files.js";
import { launchChromium, needsChromium } from "./support/browser.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";
import { serveStatic } from "./support/static-server.js";

const ready = { ...needsShared(), ...needsChromium() };
const SHOTS = process.env.STYLEGRAM_SHOTS;

/** Few layers: what these tests check is the browser's path, not the layers (test/golden covers them). */
const LAYERS = { contentLayers: ["relu2_1"], styleLayers: ["relu1_1", "relu2_1"] };

describe("stylegram/browser in chromium", ready, () => {
  let weights: VggWeights;
  let server: StylegramServer;
  let browser: Browser;
  /** One context: its pages share the browser's storage (the weights' cache), as a person's tabs do. */
  let context: BrowserContext;
  let page: Page;
  let base: string;
  let tmp: string;
  const files: Record<"content" | "image" | "style", Buffer> = {} as never;
  /** Every URL the pages asked the server for, with its method. */
  const requests: string[] = [];

  const newPage = async (viewport = { width: 1280, height: 800 }) => {
    const p = await context.newPage();
    await p.setViewportSize(viewport);
    // tsx names the functions it compiles with a helper the page lacks.
    await p.addInitScript("globalThis.__name = (f) => f");
    p.on("request", (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
    return p;
  };

  before(async () => {
    const problem = browserFilesProblem();
    if (problem) throw new Error(problem);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-browser-"));
    const png = (name: string, w: number, h: number) =>
      sharp(path.join(IMAGES_DIR, name)).resize(w, h, { fit: "fill" }).png().toBuffer();
    files.content = await png("tubingen.jpg", 32, 32);
    files.image = await png("starry_night.jpg", 32, 32);
    files.style = await png("the_scream.jpg", 24, 32);
    for (const [k, b] of Object.entries(files)) fs.writeFileSync(path.join(tmp, `${k}.png`), b);
    weights = loadManifestWeights(WEIGHTS_DIR);
    server = await buildServer({ weights });
    await server.app.listen({ port: 0, host: "127.0.0.1" });
    base = `http://localhost:${(server.app.server.address() as { port: number }).port}`;
    browser = await launchChromium({ webgpu: true });
    context = await browser.newContext({ acceptDownloads: true });
    page = await newPage();
    await page.goto(`${base}/`);
  });
  after(async () => {
    await browser?.close();
    await server?.app.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** computeLoss() in the page, the three images given as Blobs. */
  const lossInPage = (p: Page, device: string, extra: Record<string, unknown> = {}) =>
    p.evaluate(
      async ({ f, device, extra, layers }) => {
        // Typed as the module's source; the page's import is the server's bundle.
        const m = (await import("/stylegram-browser.js" as string)) as typeof Stylegram;
        const blob = (b: number[]) => new Blob([new Uint8Array(b)], { type: "image/png" });
        const downloads: { received: number; total?: number; cached: boolean }[] = [];
        try {
          const r = await m.computeLoss({
            content: blob(f.content),
            styles: [blob(f.style)],
            image: blob(f.image),
            device: device as Stylegram.BrowserDeviceRequest,
            options: layers,
            onDownload: (d: { received: number; total?: number; cached: boolean }) => downloads.push(d),
            ...extra,
          });
          const { gradient, ...terms } = r;
          return { ...terms, gradient: [...gradient], downloads, adapter: await m.gpuAdapter() };
        } catch (e) {
          return { error: `${(e as Error).name}: ${(e as Error).message}` };
        }
      },
      {
        f: { content: [...files.content], style: [...files.style], image: [...files.image] },
        device,
        extra,
        layers: LAYERS,
      },
    );

  test("computeLoss() on SwiftShader's WebGPU and on wasm gives Node's CPU terms within 1e-3", async () => {
    const node = await computeLoss({
      content: path.join(tmp, "content.png"),
      image: path.join(tmp, "image.png"),
      styles: [path.join(tmp, "style.png")],
      options: LAYERS,
      weights,
      device: "cpu",
    });
    const close = (got: number, want: number, what: string) =>
      assert.ok(Math.abs(got - want) <= 1e-3 * Math.abs(want), `${what}: ${got} against Node's ${want}`);
    for (const device of ["webgpu", "wasm"] as const) {
      const r = await lossInPage(page, device);
      assert.ok(!("error" in r), `${device}: ${"error" in r ? r.error : ""}`);
      if ("error" in r) return;
      assert.equal(r.device, device);
      assert.deepEqual(
        Object.keys(r)
          .filter((k) => ["total", "content", "style", "tv"].includes(k))
          .sort(),
        ["content", "style", "total", "tv"],
      );
      if (device === "webgpu") {
        assert.match(r.adapter.name, /swiftshader/i, "the adapter is SwiftShader's");
        // The first load downloads, with progress up to the file's length.
        const last = r.downloads.at(-1);
        assert.ok(
          r.downloads.length > 1 && r.downloads.every((d) => !d.cached),
          JSON.stringify(r.downloads[0]),
        );
        assert.ok(last && last.received === last.total && last.received > 70e6, JSON.stringify(last));
      }
      close(r.total, node.total, `${device} total`);
      close(r.tv, node.tv, `${device} tv`);
      for (const [k, v] of Object.entries(node.content))
        close(r.content[k] as number, v, `${device} content ${k}`);
      for (const [k, v] of Object.entries(node.style)) close(r.style[k] as number, v, `${device} style ${k}`);
      // The gradient too, as one vector: the optimiser follows it.
      let diff = 0;
      let norm = 0;
      node.gradient.forEach((g, i) => {
        diff += (g - (r.gradient[i] as number)) ** 2;
        norm += g * g;
      });
      assert.ok(
        Math.sqrt(diff / norm) < 1e-3,
        `${device} gradient: relative difference ${Math.sqrt(diff / norm)}`,
      );
    }
  });

  test("the weights are checked against their digest and come from the browser's cache the second time; tiles give the whole's numbers", async () => {
    // The first test downloaded them; a new page has a new worker, which finds them in the Cache API.
    const p = await newPage();
    await p.goto(`${base}/`);
    const before = requests.length;
    const r = await lossInPage(p, "wasm");
    assert.ok(!("error" in r), "error" in r ? r.error : "");
    if ("error" in r) return;
    const asked = requests.slice(before);
    assert.ok(asked.includes("GET /stylegram-weights.json"), asked.join(", "));
    assert.ok(
      !asked.some((a) => a.endsWith(WEIGHTS_FILE)),
      `no download of the weights: ${asked.join(", ")}`,
    );
    assert.ok(r.downloads.length > 0 && r.downloads.every((d) => d.cached), JSON.stringify(r.downloads));
    // In tiles (the path a GPU's buffer limit takes), the same numbers as whole.
    const tiled = await lossInPage(p, "wasm", { tile: 16 });
    assert.ok(!("error" in tiled), "error" in tiled ? tiled.error : "");
    if ("error" in tiled) return;
    assert.ok(
      Math.abs(tiled.total - r.total) <= 1e-3 * r.total,
      `tiled ${tiled.total} against whole ${r.total}`,
    );
    // Another digest than the file's: refused, naming both.
    const wrong = "0".repeat(64);
    const bad = await lossInPage(p, "wasm", { weights: { url: `/${WEIGHTS_FILE}`, sha256: wrong } });
    assert.ok("error" in bad);
    if (!("error" in bad)) return;
    assert.match(
      bad.error as string,
      /StylegramError: the weights at .* are not the ones asked for: their SHA-256 is [0-9a-f]{64}, not 0{64}/,
    );
    // The device names of the browser: Node's "cpu" is refused with the browser's name for it.
    const cpu = await lossInPage(p, "cpu");
    assert.ok(
      "error" in cpu &&
        /UsageError: device must be one of "webgpu", "wasm", "auto" \(in a browser the CPU is "wasm"\)/.test(
          cpu.error as string,
        ),
    );
    await p.close();
  });

  test("options are checked as in Node, and errors keep their class across the worker", async () => {
    const r = await page.evaluate(
      async ({ f }) => {
        const m = (await import("/stylegram-browser.js" as string)) as typeof Stylegram;
        const blob = (b: number[]) => new Blob([new Uint8Array(b)], { type: "image/png" });
        const attempt = async (extra: Record<string, unknown>) => {
          try {
            await m.stylize({ content: blob(f.content), styles: [blob(f.style)], device: "wasm", ...extra });
            return "no error";
          } catch (e) {
            return `${e instanceof m.UsageError ? "UsageError" : "other"}: ${(e as Error).message}`;
          }
        };
        return [
          await attempt({ sise: 32 }),
          await attempt({ styleWeight: -1 }),
          await attempt({ content: 42 }),
        ];
      },
      { f: { content: [...files.content], style: [...files.style] } },
    );
    assert.deepEqual(r.slice(0, 2), [
      'UsageError: stylize() has no option "sise" (did you mean "size"?)',
      "UsageError: styleWeight must be a finite number >= 0, got -1",
    ]);
    assert.match(
      r[2] as string,
      /^UsageError: content must be an image: a URL, a Blob or File, an ImageBitmap, ImageData/,
    );
  });

  /** stylize() in the page: its progress, result and PNG, optionally aborted after `abortAfter` iterations. */
  const stylizeInPage = (device: string, iterations: number, abortAfter?: number) =>
    page.evaluate(
      async ({ f, device, iterations, abortAfter }) => {
        // Typed as the module's source; the page's import is the server's bundle.
        const m = (await import("/stylegram-browser.js" as string)) as typeof Stylegram;
        const blob = (b: number[]) => new Blob([new Uint8Array(b)], { type: "image/png" });
        const controller = new AbortController();
        const losses: number[] = [];
        const stages: string[] = [];
        let snapshots = 0;
        try {
          const r = await m.stylize({
            content: blob(f.content),
            styles: [blob(f.style)],
            size: 32,
            iterations,
            contentLayers: ["relu1_1"],
            styleLayers: ["relu1_1"],
            device: device as Stylegram.BrowserDeviceRequest,
            png: true,
            signal: controller.signal,
            onStage: (s: { stage: string; device?: string; reason?: string }) => {
              if (s.stage === "device") stages.push(`${s.device}: ${s.reason}`);
            },
            onProgress: (p: { loss: number; iteration: number }) => {
              losses.push(p.loss);
              if (p.iteration === abortAfter) controller.abort();
            },
            onSnapshot: (image: ImageData) => {
              if (image instanceof ImageData) snapshots++;
            },
          });
          const head = new Uint8Array(await (r.png as Blob).arrayBuffer()).slice(1, 4);
          return {
            width: r.image.width,
            height: r.image.height,
            pixels: r.image.data.length,
            isImageData: r.image instanceof ImageData,
            png: new TextDecoder().decode(head),
            iterations: r.iterations,
            reason: r.reason,
            device: r.device,
            loss: r.loss.total,
            losses,
            stages,
            snapshots,
          };
        } catch (e) {
          return { error: `${(e as Error).name}: ${(e as Error).message}` };
        }
      },
      { f: { content: [...files.content], style: [...files.style] }, device, iterations, abortAfter },
    );

  for (const device of ["webgpu", "wasm"]) {
    test(`stylize() paints on ${device}: progress, snapshots, ImageData and a PNG Blob`, async () => {
      const r = await stylizeInPage(device, 3);
      assert.ok(!("error" in r), "error" in r ? r.error : "");
      if ("error" in r) return;
      assert.equal(r.device, device);
      assert.match(
        r.stages[0] ?? "",
        device === "webgpu" ? /^webgpu: asked for \(.*swiftshader/i : /^wasm: asked for/,
      );
      assert.deepEqual(
        [r.width, r.height, r.pixels, r.isImageData, r.png],
        [32, 32, 32 * 32 * 4, true, "PNG"],
      );
      assert.equal(r.iterations, 3);
      assert.equal(r.losses.length, 3);
      assert.ok(r.snapshots >= 1);
      assert.ok(r.loss < (r.losses[0] as number), `the loss fell: ${r.losses.join(", ")}`);
    });
  }

  test("an AbortSignal stops stylize() after the step it is in, with the best picture so far", async () => {
    const r = await stylizeInPage("wasm", 100, 2);
    assert.ok(!("error" in r), "error" in r ? r.error : "");
    if ("error" in r) return;
    assert.equal(r.reason, "aborted", `after ${r.iterations} iterations`);
    // The abort crosses from the page to the worker by message, which the worker reads between
    // evaluations (tens of ms each at 32 px): on a busy machine a step or two more may run.
    assert.ok(r.iterations >= 2 && r.iterations <= 5, `stopped at ${r.iterations}`);
    assert.equal(r.width, 32);
  });

  /** Fills the page's form with the photo and painting, at sizes far below its own smallest (a test's). */
  const fillForm = async (p: Page, compute: "browser" | undefined) => {
    await p.waitForSelector("body[data-ready=yes]");
    if (compute) await p.selectOption("#compute", compute);
    await p.setInputFiles("#content", path.join(tmp, "content.png"));
    await p.setInputFiles("#style", path.join(tmp, "style.png"));
    await p.evaluate(() => {
      const size = document.querySelector("#field-size") as HTMLSelectElement;
      size.add(new Option("32 px", "32"), 0);
      size.value = "32";
      const it = document.querySelector("#field-iterations") as HTMLInputElement;
      it.min = "1";
      it.step = "1";
      it.value = "3";
      it.dispatchEvent(new Event("input"));
    });
  };

  /** Starts the form and waits for the picture; the PNG's download is checked. */
  const paint = async (p: Page) => {
    await p.click("#start");
    await p.waitForSelector("#job-view[data-state=done], #job-view[data-state=failed]", { timeout: 60_000 });
    assert.equal(
      await p.$eval("#job-view", (e) => (e as HTMLElement).dataset.state),
      "done",
      (await p.textContent("#error")) ?? "",
    );
    assert.ok(
      Number(await p.$eval("#plot", (e) => (e as HTMLElement).dataset.points)) >= 1,
      "the loss is plotted",
    );
    const [download] = await Promise.all([p.waitForEvent("download"), p.click("#download-png")]);
    const meta = await sharp(await download.path()).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ["png", 32, 32]);
  };

  test("the page paints in this browser with nothing posted to the API (desktop and phone), and cancels", async () => {
    const p = await newPage();
    await p.goto(`${base}/`);
    await fillForm(p, undefined);
    // SwiftShader is no GPU: the page proposes the server, and says why.
    assert.equal(await p.$eval("#compute", (e) => (e as HTMLSelectElement).value), "server");
    assert.match((await p.textContent("#compute-hint")) ?? "", /software one \(google swiftshader\)/);
    await p.selectOption("#compute", "browser");
    const before = requests.length;
    await paint(p);
    const posted = requests.slice(before).filter((r) => r.startsWith("POST") || r.includes("/api/jobs"));
    assert.deepEqual(posted, []);
    assert.match(
      (await p.textContent("#status-text")) ?? "",
      /3 iterations in .*, 32 × 32, on this browser's CPU/,
    );
    if (SHOTS) {
      fs.mkdirSync(SHOTS, { recursive: true });
      await p.evaluate(() => window.scrollTo(0, 0));
      await p.screenshot({ path: path.join(SHOTS, "browser-desktop.png") });
      await p.setViewportSize({ width: 390, height: 844 });
      await p.screenshot({ path: path.join(SHOTS, "browser-phone.png"), fullPage: true });
      await p.setViewportSize({ width: 1280, height: 800 });
    }
    // Cancel stops a long run after the step it is in and keeps the best picture so far.
    await p.evaluate(() => {
      const it = document.querySelector("#field-iterations") as HTMLInputElement;
      it.max = "100000";
      it.value = "100000";
      it.dispatchEvent(new Event("input"));
    });
    await p.click("#start");
    await p.waitForFunction(
      () => Number((document.querySelector("#plot") as HTMLElement).dataset.points) >= 2,
    );
    await p.click("#cancel");
    await p.waitForSelector("#job-view[data-state=cancelled]", { timeout: 30_000 });
    assert.match(
      (await p.textContent("#status-text")) ?? "",
      /Cancelled at iteration \d+ of 100000; the best picture so far is kept/,
    );
    assert.equal(await p.isVisible("#download-png"), true);
    assert.deepEqual(
      requests.slice(before).filter((r) => r.startsWith("POST") || r.includes("/api/jobs")),
      [],
    );
    await p.close();
  });

  test("npm run build:site's folder, on a plain static file server, paints a picture", async () => {
    const out = path.join(tmp, "site");
    const built = await buildSite({ out, weights });
    assert.ok(
      built.files.includes("index.html") && built.files.includes(WEIGHTS_FILE),
      built.files.join(", "),
    );
    const site = await serveStatic(out);
    try {
      const p = await newPage();
      await p.goto(site.url);
      await fillForm(p, undefined);
      // No server behind it: this browser is the only choice.
      assert.deepEqual(
        await p.$$eval("#compute option", (o) => o.map((x) => (x as HTMLOptionElement).value)),
        ["browser"],
      );
      await paint(p);
      assert.deepEqual(
        site.asked.filter((a) => a.includes("/api/") || a.startsWith("POST")),
        [],
      );
      await p.close();
    } finally {
      await site.close();
    }
  });
});
