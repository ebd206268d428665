/**
 * The page of a server that needs a token, in chromium: it asks once, says when a token is
 * refused, and works (and keeps the token over a reload) once one is taken.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveWeightsFor } from "../src/models/resolve.js";
import { buildServer } from "../src/server/app.js";
import { launchChromium, needsChromium } from "./support/browser.js";
import { needsShared, WEIGHTS_DIR } from "./support/shared.js";

const TOKEN = "class-of-2026-0123456789abcdef";

test("the page asks for the token once: a wrong one is named, a right one opens the form and outlives a reload", {
  ...needsShared(),
  ...needsChromium(),
  timeout: 120_000,
}, async () => {
  const weights = await resolveWeightsFor({ path: WEIGHTS_DIR });
  const server = await buildServer({ weights, tokens: [TOKEN] });
  await server.app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = server.app.server.address() as { port: number };
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(`http://localhost:${port}/`);
    await page.waitForSelector("#token-dialog[open]");
    assert.equal(await page.locator("#field-size").count(), 0, "the form waits for the token");
    await page.fill("#token", "wrong-token-0000000000");
    await page.click("#token-submit");
    await page.waitForSelector("#token-error:not([hidden])");
    assert.match((await page.textContent("#token-error")) ?? "", /not one this server takes/);
    await page.fill("#token", TOKEN);
    await page.click("#token-submit");
    await page.waitForSelector("#field-size");
    assert.equal(await page.locator("#token-dialog[open]").count(), 0);
    const cookies = await page.context().cookies();
    assert.deepEqual(
      cookies.map((c) => [c.name, c.httpOnly, c.sameSite]),
      [["stylegram_token", true, "Strict"]],
      "kept where the page's scripts cannot read it",
    );
    await page.reload();
    await page.waitForSelector("#field-size");
    assert.equal(await page.locator("#token-dialog[open]").count(), 0, "not asked again");
  } finally {
    await browser.close();
    await server.app.close();
  }
});
