/**
 * `npm run gallery`: the README's gallery of the colour and region controls, in docs/gallery/, made
 * from ../shared/images so that it can be remade: the photo and the paintings as thumbnails, the
 * sky and ground masks (made here from the photo), and the pictures: the default transfer,
 * --colors histogram, --colors luminance, and two styles by region: three optimisations of 200
 * iterations at 384 px (23 minutes on 2 cores shared with other jobs, about 2.2 s an iteration).
 *
 *   npm run gallery [-- --size 384] [--iterations 200] [--only default,histogram,luminance,regions]
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { keepOriginalColors } from "../src/image/colors.js";
import type { RgbImage } from "../src/image/image.js";
import { loadImage } from "../src/image/io.js";
import { loadManifestWeights } from "../src/network/formats/manifest.js";
import type { StylizeOptions } from "../src/stylize/options.js";
import { stylize } from "../src/stylize/stylize.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SHARED = path.resolve(ROOT, "..", "shared");
const OUT = path.join(ROOT, "docs", "gallery");
const { values } = parseArgs({
  options: {
    size: { type: "string", default: "384" },
    iterations: { type: "string", default: "200" },
    only: { type: "string", default: "default,histogram,luminance,regions" },
  },
});
const size = Number(values.size);
const iterations = Number(values.iterations);
const only = new Set(values.only.split(","));
const image = (name: string) => path.join(SHARED, "images", name);
const photoFile = image("tubingen.jpg");
const starry = image("starry_night.jpg");
const scream = image("the_scream.jpg");

fs.mkdirSync(OUT, { recursive: true });
const weights = loadManifestWeights(path.join(SHARED, "models", "vgg19"));

/** A small JPEG: the gallery is for looking at in a README, not for printing. */
async function saveJpeg(name: string, img: RgbImage): Promise<void> {
  await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } })
    .jpeg({ quality: 85, mozjpeg: true })
    .toFile(path.join(OUT, name));
  console.log(`wrote docs/gallery/${name}`);
}

/**
 * The sky of the Tübingen photo: down each column from the top, the run of clearly blue pixels (blue
 * well above red), which a few other pixels (a branch) do not end, within the upper 60% (the river
 * below reflects the sky); then smoothed a little, so that the boundary is soft rather than
 * pixel-sharp. The ground is its complement.
 */
async function skyMask(photo: RgbImage): Promise<Uint8Array> {
  const { width: w, height: h, data } = photo;
  const blue = (x: number, y: number) => {
    const p = 3 * (y * w + x);
    return (data[p + 2] as number) - (data[p] as number) > 35;
  };
  const sky = new Uint8Array(w * h);
  for (let x = 0; x < w; x++) {
    // Down each column, sky while it is blue (a few non-blue pixels, a branch, do not end it).
    let misses = 0;
    for (let y = 0; y < 0.6 * h; y++) {
      if (blue(x, y)) misses = 0;
      else if (++misses > 3) break;
      sky[y * w + x] = 255;
    }
  }
  return new Uint8Array(
    await sharp(Buffer.from(sky), { raw: { width: w, height: h, channels: 1 } })
      .blur(1.5)
      .extractChannel(0)
      .raw()
      .toBuffer(),
  );
}

async function saveMask(name: string, mask: Uint8Array, w: number, h: number): Promise<string> {
  const file = path.join(OUT, name);
  await sharp(Buffer.from(mask), { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toFile(file);
  console.log(`wrote docs/gallery/${name}`);
  return file;
}

async function run(label: string, options: Partial<StylizeOptions>): Promise<RgbImage> {
  const started = performance.now();
  const result = await stylize({
    content: photoFile,
    styles: [starry],
    size,
    iterations,
    weights,
    onProgress: (p) => {
      if (p.iteration % 50 === 0)
        console.log(`${label}: ${p.iteration}/${p.iterations}, loss ${p.total.toExponential(3)}`);
    },
    onStage: (s) => {
      if (s.stage === "notice") console.log(`${label}: note: ${s.message}`);
    },
    ...options,
  });
  console.log(`${label}: ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return result.image;
}

const photo = await loadImage(photoFile, { longEdge: size });
await saveJpeg("photo.jpg", photo);
await saveJpeg("starry_night.jpg", await loadImage(starry, { longEdge: size }));
await saveJpeg("the_scream.jpg", await loadImage(scream, { longEdge: size }));
const sky = await skyMask(photo);
const skyFile = await saveMask("sky-mask.png", sky, photo.width, photo.height);
const groundFile = await saveMask(
  "ground-mask.png",
  sky.map((v) => 255 - v),
  photo.width,
  photo.height,
);

if (only.has("default") || only.has("luminance")) {
  const plain = await run("default", {});
  if (only.has("default")) await saveJpeg("default.jpg", plain);
  // --colors luminance is this same optimisation, with the photo's chroma put back at the end
  // (stylize() does exactly this): one run makes both pictures.
  if (only.has("luminance")) await saveJpeg("luminance.jpg", keepOriginalColors(plain, photo));
}
if (only.has("histogram")) await saveJpeg("histogram.jpg", await run("histogram", { colors: "histogram" }));
if (only.has("regions"))
  await saveJpeg(
    "regions.jpg",
    await run("regions", { styles: [starry, scream], masks: [skyFile, groundFile] }),
  );
