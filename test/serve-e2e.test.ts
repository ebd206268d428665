/**
 * The web app end to end in a real browser: Debian's chromium driven by
 * playwright-core, at desktop (1280x800) and phone (390x844) sizes. It uploads
 * a photo and a painting, sees the preview change and the loss plot grow,
 * downloads the result, reopens it by its address, then starts a second job,
 * reloads the page (which reattaches to the job) and cancels it, keeping its
 * best picture; on a phone, Start brings the job's card into view. It takes
 * screenshots at both sizes (into $STYLEGRAM_SHOTS when set).
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
import { drained, type JobJson } from "./support/serve.js";
import { IMAGES_DIR, needsShared, WEIGHTS_DIR } from "./support/shared.js";

const ready = { ...needsShared(), ...needsChromium() };
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

describe("the web app in chromium", ready, () => {
  let server: StylegramServer;
  let browser: Browser;
  let page: Page;
  let base: string;
  let tmp: string;
  let shots: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stylegram-e2e-"));
    shots = process.env.STYLEGRAM_SHOTS ?? tmp;
    fs.mkdirSync(shots, { recursive: true });
    // Small files; the size asked of the page (128 px, its smallest) is what decides the speed.
    await sharp(path.join(IMAGES_DIR, "tubingen.jpg")).resize(320).toFile(path.join(tmp, "tubingen.jpg"));
    await sharp(path.join(IMAGES_DIR, "the_scream.jpg")).resize(240).toFile(path.join(tmp, "scream.jpg"));
    fs.writeFileSync(path.join(tmp, "notes.txt"), "not a picture");
    server = await buildServer({ weights: loadManifestWeights(WEIGHTS_DIR), frameMs: 250 });
    await server.app.listen({ port: 0, host: "127.0.0.1" });
    base = `http://localhost:${(server.app.server.address() as { port: number }).port}`;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: DESKTOP, acceptDownloads: true });
  });
  after(async () => {
    await browser?.close();
    await server?.app.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const points = () => page.$eval("#plot", (el) => Number((el as HTMLElement).dataset.points));
  /** A screenshot: a PNG of the page's size (the whole page when `full`), kept in $STYLEGRAM_SHOTS when set. */
  const shoot = async (p: Page, name: string, full = false) => {
    const file = path.join(shots, `${name}.png`);
    await p.screenshot({ path: file, fullPage: full });
    const meta = await sharp(file).metadata();
    const size = p.viewportSize() as { width: number; height: number };
    const scale = p === page ? 1 : 2;
    assert.equal(meta.width, size.width * scale, file);
    assert.ok((meta.height as number) >= size.height * scale, file);
  };
  /** The preview fills its box: the image's box has the picture's own shape, and nothing is drawn behind it. */
  const previewFits = (p: Page) =>
    p.evaluate(() => {
      const img = document.querySelector("#preview") as HTMLImageElement;
      const box = document.querySelector("#preview-box") as HTMLElement;
      const r = img.getBoundingClientRect();
      return {
        shown: r.width / r.height,
        natural: img.naturalWidth / img.naturalHeight,
        background: getComputedStyle(box).backgroundImage + getComputedStyle(box).backgroundColor,
      };
    });
  const jobId = () => page.evaluate(() => /#job=([\w-]+)/.exec(location.hash)?.[1] ?? "");
  const api = async (id: string) => (await (await fetch(`${base}/api/jobs/${id}`)).json()) as JobJson;

  test("upload two images (a non-image among them is said at once), watch the preview and the plot, download the result", async () => {
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
    // A file that is no image, chosen with a painting: said at once under its zone, the painting taken.
    await page.setInputFiles("#style", [path.join(tmp, "notes.txt"), path.join(tmp, "scream.jpg")]);
    assert.equal(await page.isVisible("#error-style"), true, "the wrong file is said when it is chosen");
    assert.match(
      (await page.textContent("#error-style")) ?? "",
      /^notes\.txt is not an image stylegram reads: choose JPEG, PNG, WebP, GIF, TIFF or AVIF\.$/,
    );
    assert.equal(await page.locator("#thumbs-content img").count(), 1, "a thumbnail of the photo");
    assert.equal(await page.locator("#thumbs-style img").count(), 1, "a thumbnail of the painting");
    await shoot(page, "desktop-form");
    await page.selectOption("#field-size", "128");
    await page.locator("#field-iterations").fill("30");
    await page.click("#start");
    await page.waitForFunction(() => /^#job=/.test(location.hash));
    assert.equal(await page.isHidden("#error-style"), true, "Start clears what was said");

    // The plot grows while it paints: three increasing counts seen before the end.
    const seen: number[] = [];
    let painted = false;
    const deadline = Date.now() + 120_000;
    while ((await page.textContent("#badge")) !== "Done") {
      assert.ok(Date.now() < deadline, "the job did not end in 2 minutes");
      assert.notEqual(await page.textContent("#badge"), "Failed", (await page.textContent("#error")) ?? "");
      const n = await points();
      if (n > 0 && n !== seen.at(-1)) seen.push(n);
      if (n >= 3 && !painted) {
        painted = true;
        // A few iterations in, the x axis still counts whole iterations (1, 2, 3), never 1.5.
        const ticks = await page.$eval("#plot", (el) => (el as HTMLElement).dataset.xticks ?? "");
        assert.match(ticks, /^\d+(,\d+)*$/, `x ticks ${ticks}`);
        await shoot(page, "desktop-painting");
      }
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
    assert.equal(await page.textContent("#stat-eta"), "0:00");
    const ticks = await page.$eval("#plot", (el) => (el as HTMLElement).dataset.xticks ?? "");
    assert.match(ticks, /^\d+(,\d+)+$/, `x ticks ${ticks}`);
    assert.match(
      (await page.textContent("#command")) ?? "",
      /^stylegram tubingen\.jpg scream\.jpg -o tubingen-stylegram\.png --size 128 /,
    );
    // No background beside the picture (it showed as thin checkerboard slivers left and right).
    await page.waitForFunction(() => (document.querySelector("#preview") as HTMLImageElement).complete);
    const fit = await previewFits(page);
    assert.ok(Math.abs(fit.shown - fit.natural) < 0.02, JSON.stringify(fit));
    assert.equal(fit.background, "nonergba(0, 0, 0, 0)");
    await shoot(page, "desktop-done", true);

    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-png")]);
    const file = path.join(tmp, download.suggestedFilename());
    await download.saveAs(file);
    assert.equal(download.suggestedFilename(), "tubingen-stylegram.png");
    const meta = await sharp(file).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ["png", 128, 96]);
    assert.ok(fs.statSync(file).size > 5_000, "a real picture, not an error page");
  });

  test("a finished job reopened by its address shows it as it ended", async () => {
    const again = await browser.newPage({ viewport: DESKTOP });
    try {
      await again.goto(page.url());
      await again.waitForFunction(() => document.querySelector("#badge")?.textContent === "Done");
      assert.equal(await again.textContent("#stat-eta"), "0:00", "no time left, not –");
      assert.equal(await again.textContent("#stat-iteration"), "30 / 30");
      assert.equal(await again.isVisible("#download-png"), true);
    } finally {
      await again.close();
    }
  });

  test("a second job: a reload reattaches to it, and Cancel stops it, keeping its best picture", async () => {
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
    // The loss so far is drawn at once (in the next frame), not point by point as it comes: within
    // 5 s, where this busy machine gives a point about every second.
    await page.waitForFunction(
      () => Number((document.querySelector("#plot") as HTMLElement).dataset.points) >= 3,
      null,
      { timeout: 5000 },
    );
    const before = await points();
    await page.waitForFunction(
      (n) => Number((document.querySelector("#plot") as HTMLElement).dataset.points) > n,
      before,
    );
    assert.equal(await page.textContent("#badge"), "Painting");

    await page.click("#cancel");
    await page.waitForFunction(() => document.querySelector("#badge")?.textContent === "Cancelled");
    assert.equal(await page.isHidden("#cancel"), true);
    const job = await api(id);
    assert.equal(job.state, "cancelled");
    assert.match(
      (await page.textContent("#status-text")) ?? "",
      new RegExp(`^Cancelled at iteration ${job.iteration} of 1000; the best picture so far is kept\\.$`),
    );
    assert.equal(await page.textContent("#stat-eta"), "–");
    // What the page shows agrees with the job: the last step before the stop is counted and drawn.
    assert.equal(await page.textContent("#stat-iteration"), `${job.iteration} / 1000`);
    await page.waitForFunction(
      (n) => Number((document.querySelector("#plot") as HTMLElement).dataset.points) === n,
      job.losses.length,
    );
    await shoot(page, "desktop-cancelled", true);
    // As the CLI's Ctrl-C keeps it, the best picture so far is offered for download.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-png")]);
    const file = path.join(tmp, `cancelled-${download.suggestedFilename()}`);
    await download.saveAs(file);
    const meta = await sharp(file).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ["png", 128, 96]);
    assert.deepEqual(await drained(server), { waiting: 0, running: 0 }, "the slot is free");
  });

  test("on a phone (390x844), Start brings the job's card into view, and Copy stays in its box", async () => {
    const phone = await browser.newPage({
      viewport: PHONE,
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    try {
      await phone.goto(base);
      // A camera's long file name: one word of the command longer than the phone's line.
      const long = path.join(tmp, "holiday-photo-from-my-camera-2024-05-17-tubingen-neckarfront.jpg");
      fs.copyFileSync(path.join(tmp, "tubingen.jpg"), long);
      await phone.setInputFiles("#content", long);
      await phone.setInputFiles("#style", path.join(tmp, "scream.jpg"));
      await phone.selectOption("#field-size", "128");
      await phone.locator("#field-iterations").fill("20");
      await shoot(phone, "phone-form");
      await phone.locator("#start").scrollIntoViewIfNeeded();
      await phone.click("#start");
      await phone.waitForFunction(() => (document.querySelector("#job-view") as HTMLElement).dataset.job);
      // Once the picture and the plot have come, the card's top is still in view.
      // The job's set-up (weights, graph) in a worker process: slow when other tests share the cores.
      await phone.waitForFunction(
        () => Number((document.querySelector("#plot") as HTMLElement).dataset.points) >= 2,
        null,
        { timeout: 120_000 },
      );
      const card = await phone.evaluate(() =>
        document.querySelector("#job")?.getBoundingClientRect().toJSON(),
      );
      assert.ok(card.top >= -1 && card.top < PHONE.height / 4, `the card's top is at ${card.top}`);
      await shoot(phone, "phone-after-start");
      await phone.waitForFunction(() => document.querySelector("#badge")?.textContent === "Done", null, {
        timeout: 120_000,
      });
      const [copy, box] = await phone.evaluate(() =>
        ["#copy", ".command"].map((q) => document.querySelector(q)?.getBoundingClientRect().toJSON()),
      );
      assert.ok(
        copy.right <= box.right && copy.left >= box.left,
        `Copy ${copy.left}-${copy.right} in ${box.left}-${box.right}`,
      );
      await phone.waitForFunction(() => (document.querySelector("#preview") as HTMLImageElement).complete);
      const fit = await previewFits(phone);
      assert.ok(Math.abs(fit.shown - fit.natural) < 0.02, JSON.stringify(fit));
      await shoot(phone, "phone-done", true);
    } finally {
      await phone.close();
    }
  });
});
