/**
 * `npm run screenshot`: the web app during a run, as docs/screenshot.png (shown
 * in the README). Starts the server on a free loopback port, drives Debian's
 * chromium through playwright-core, uploads a photo and a painting and takes
 * the picture once the preview and the loss curve have something to show.
 *
 *   npm run screenshot [-- --out FILE] [--phone FILE] [--content IMG] [--style IMG]
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { resolveWeightsFor } from "../src/models/resolve.js";
import { buildServer } from "../src/server/app.js";
import { launchChromium } from "../test/support/browser.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SHARED = path.resolve(ROOT, "..", "shared");
const { values } = parseArgs({
  options: {
    out: { type: "string", default: path.join(ROOT, "docs", "screenshot.png") },
    phone: { type: "string" },
    content: { type: "string", default: path.join(SHARED, "images", "tubingen.jpg") },
    style: { type: "string", default: path.join(SHARED, "images", "starry_night.jpg") },
    size: { type: "string", default: "256" },
    after: { type: "string", default: "60" },
  },
});

const sharedWeights = path.join(SHARED, "models", "vgg19");
const weights = await resolveWeightsFor(
  process.env.STYLEGRAM_WEIGHTS || !fs.existsSync(sharedWeights) ? {} : { path: sharedWeights },
);
const server = await buildServer({ weights });
await server.app.listen({ port: 0, host: "127.0.0.1" });
const { port } = server.app.server.address() as { port: number };
const browser = await launchChromium();

/** A PNG of the page, made small with a palette (the README shows it; the repository keeps it). */
async function save(png: Buffer, file: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, await sharp(png).png({ palette: true, quality: 90, effort: 10 }).toBuffer());
  console.log(`wrote ${file} (${Math.round(fs.statSync(file).size / 1024)} KB)`);
}

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  await page.goto(`http://localhost:${port}/`);
  await page.setInputFiles("#content", values.content);
  await page.setInputFiles("#style", values.style);
  await page.selectOption("#field-size", values.size);
  await page.click("#start");
  await page.waitForFunction(
    (n) => Number(document.querySelector<HTMLElement>("#plot")?.dataset.points) >= n,
    Number(values.after),
    { timeout: 300_000 },
  );
  await save(await page.screenshot({ fullPage: true }), values.out);
  if (values.phone) {
    const phone = await browser.newPage({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
    });
    await phone.goto(page.url());
    await phone.waitForFunction(
      () => Number(document.querySelector<HTMLElement>("#plot")?.dataset.points) > 0,
    );
    await phone.waitForTimeout(1500);
    await save(await phone.screenshot({ fullPage: true }), values.phone);
  }
} finally {
  await browser.close();
  await server.app.close();
}
