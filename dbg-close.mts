import { loadManifestWeights } from "./src/network/formats/manifest.js";
import { buildServer } from "./src/server/app.js";
import { jobForm, tinyImages } from "./test/support/serve.js";

const s = await buildServer({ weights: loadManifestWeights("/work/shared/models/vgg19"), frameMs: 0 });
await s.app.listen({ port: 0, host: "127.0.0.1" });
const port = (s.app.server.address() as { port: number }).port;
const { photo, painting } = await tinyImages(40);
const ids: string[] = [];
for (let i = 0; i < 3; i++) {
  const r = await fetch(`http://localhost:${port}/api/jobs`, {
    method: "POST",
    body: jobForm({ content: photo, styles: [painting], options: { size: 32, iterations: 300 } }),
  });
  ids.push((await r.json()).id);
}
const es = fetch(`http://localhost:${port}/api/jobs/${ids[0]}/events`)
  .then((r) => r.text())
  .catch((e) => `err ${e}`);
await new Promise((r) => setTimeout(r, 3000));
console.log("closing", JSON.stringify(s.queue.counts));
const t = performance.now();
await s.app.close();
console.log("closed in", Math.round(performance.now() - t), "ms");
console.log((await es).slice(-80));
setTimeout(() => {
  console.log(
    "still alive after 3 s:",
    (process as any)._getActiveHandles().map((h: any) => h.constructor.name),
  );
}, 3000).unref();
