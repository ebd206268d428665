/**
 * The web app end to end in a real browser: Debian's chromium driven by
 * playwright-core. It uploads a photo and a painting, sees the preview change
 * and the loss plot grow, downloads the result, then starts a second job,
 * reloads the page (which reattaches to the job), and cancels it.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page, Response } from "playwright-core";
import sharp from "sharp";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import { buildServer, type StylegramServer } from "../src/server/app.js";
import { launchChromium, needsChromium } from "./support/browser.js";
import type { JobJson } from "./support/serve.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const ready = { ...needsShared(), ...needsChromium() };

describe("the web app in chromium", ready, () => {
  let server: StylegramServer;
  let browser: Browser;
  let page: Page;
  let base: string;
  let tmp: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-e2e-"));
    // Small files; the size asked of the page (128 px, its smallest) is what decides the speed.
    await sharp(path.join(IMAGES_DIR, "tubingen.jpg")).resize(320).toFile(path.join(tmp, "tubingen.jpg"));
    await sharp(path.join(IMAGES_DIR, "the_scream.jpg")).resize(240).toFile(path.join(tmp, "scream.jpg"));
    server = await buildServer({ weights: loadManifestWeights(WEIGHTS_DIR), frameMs: 250 });
    await server.app.listen({ port: 0, host: "127.0.0.1" });
    base = `http://localhost:${(server.app.server.address() as { port: number }).port}`;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
  });
  after(async () => {
    await browser?.close();
    await server?.app.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const points = () => page.$eval("#plot", (el) => Number((el as HTMLElement).dataset.points));
  const jobId = () => page.evaluate(() => /#job=([\w-]+)/.exec(location.hash)?.[1] ?? "");
  const api = async (id: string) => (await (await fetch(`${base}/api/jobs/${id}`)).json()) as JobJson;

  test("upload two images, watch the preview and the plot, download the result", async () => {
    const frames = new Set<string>();
    const onResponse = (r: Response) => {
      if (!/\/preview\?frame=/.test(r.url()) || !r.ok()) return;
      r.body().then(
        (b) => frames.add(createHash("sha1").update(b).digest("hex")),
        () => undefined, // a frame the page had moved past before its body was read
      );
    };
    page.on("response", onResponse);
    await page.goto(base);
    await page.setInputFiles("#content", path.join(tmp, "tubingen.jpg"));
    await page.setInputFiles("#style", path.join(tmp, "scream.jpg"));
    assert.equal(await page.locator("#thumbs-content img").count(), 1, "a thumbnail of the photo");
    assert.equal(await page.locator("#thumbs-style img").count(), 1, "a thumbnail of the painting");
    await page.selectOption("#field-size", "128");
    await page.locator("#field-iterations").fill("30");
    await page.click("#start");
    await page.waitForFunction(() => /^#job=/.test(location.hash));

    // The plot grows while it paints: three increasing counts seen before the end.
    const seen: number[] = [];
    const deadline = Date.now() + 120_000;
    while ((await page.textContent("#badge")) !== "Done") {
      assert.ok(Date.now() < deadline, "the job did not end in 2 minutes");
      assert.notEqual(await page.textContent("#badge"), "Failed", (await page.textContent("#error")) ?? "");
      const n = await points();
      if (n > 0 && n !== seen.at(-1)) seen.push(n);
      await page.waitForTimeout(100);
    }
    assert.ok(
      seen.length >= 3 && seen.every((n, i) => i === 0 || n > (seen[i - 1] as number)),
      `plot points seen: ${seen}`,
    );
    page.off("response", onResponse);
    assert.equal(await points(), 30);
    assert.ok(frames.size >= 2, `${frames.size} different preview frames`);
    assert.match((await page.textContent("#status-text")) ?? "", /30 iterations in .*128 × 96/);
    assert.match(
      (await page.textContent("#command")) ?? "",
      /^stylegram tubingen\.jpg scream\.jpg -o tubingen-stylegram\.png --size 128 /,
    );

    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-png")]);
    const file = path.join(tmp, download.suggestedFilename());
    await download.saveAs(file);
    assert.equal(download.suggestedFilename(), "tubingen-stylegram.png");
    const meta = await sharp(file).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ["png", 128, 96]);
    assert.ok(fs.statSync(file).size > 5_000, "a real picture, not an error page");
  });

  test("a second job: a reload reattaches to it, and Cancel stops it", async () => {
    const first = await jobId();
    await page.locator("#field-iterations").fill("1000");
    await page.click("#start");
    await page.waitForFunction((old) => !location.hash.endsWith(old), first);
    const id = await jobId();
    await page.waitForFunction(
      () => Number((document.querySelector("#plot") as HTMLElement).dataset.points) >= 3,
    );

    await page.reload();
    assert.equal(await jobId(), id);
    await page.waitForFunction(
      (job) => (document.querySelector("#job-view") as HTMLElement).dataset.job === job,
      id,
    );
    const before = await points();
    assert.ok(before >= 3, "the reloaded page draws the loss so far at once");
    await page.waitForFunction(
      (n) => Number((document.querySelector("#plot") as HTMLElement).dataset.points) > n,
      before,
    );
    assert.equal(await page.textContent("#badge"), "Painting");

    await page.click("#cancel");
    await page.waitForFunction(() => document.querySelector("#badge")?.textContent === "Cancelled");
    assert.equal(await page.isHidden("#cancel"), true);
    assert.equal((await api(id)).state, "cancelled");
    assert.deepEqual(server.queue.counts, { waiting: 0, running: 0 }, "the slot is free");
  });
});
