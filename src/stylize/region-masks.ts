import { UsageError } from "../errors.js";
import { isEmptyMask, type Mask, maskCoverage, resizeMask } from "../image/masks.js";
import { fitLongEdge } from "../image/size.js";
import type { ImageSource } from "../image/source.js";
import type { Environment } from "./environment.js";

/** The masks of a run, decoded once at their own size, and what the user should be told about them. */
export interface PreparedMasks {
  /** One per style image: where on the photo that style applies. */
  masks?: Mask[];
  /** One per style image, or undefined for the whole style image: where in it the style is taken from. */
  styleMasks?: (Mask | undefined)[];
  /** Sentences for the user: masks resized or stretched, parts of the photo left without style, overlaps. */
  notices: string[];
}

const describe = (src: ImageSource, what: string) => (typeof src === "string" ? `${what} (${src})` : what);

/** A notice when a mask's size is not its image's: it is resized, and stretched if the shapes differ. */
function sizeNotice(
  what: string,
  mask: { width: number; height: number },
  image: { width: number; height: number },
  imageName: string,
): string | undefined {
  if (mask.width === image.width && mask.height === image.height) return undefined;
  const sizes = `${what} is ${mask.width}x${mask.height} but ${imageName} is ${image.width}x${image.height}`;
  const shape = (s: { width: number; height: number }) => s.width / s.height;
  if (Math.abs(shape(mask) / shape(image) - 1) < 0.01)
    return `${sizes}: it is resized to fit (same shape, so the regions fall where they were drawn)`;
  return `${sizes}: it is stretched to ${imageName}'s shape, so its regions move; draw it at ${image.width}x${image.height} to place them exactly`;
}

const percent = (share: number) => (share < 0.01 ? "<1" : String(Math.round(share * 100)));

/**
 * Loads and checks the masks of stylize() before any work: an all-black mask is an error (it would
 * select nothing); a mask of another size than its image is resized, with a notice; on the photo, the
 * share left without any style (gaps: there the picture keeps the photo's content, with no style term)
 * and the share under two or more masks (overlaps: there each of those styles applies in full) are
 * told, measured at the output size `size`.
 */
export async function prepareMasks(
  env: Environment,
  options: {
    content: ImageSource;
    styles: readonly ImageSource[];
    masks?: readonly ImageSource[];
    styleMasks?: readonly (ImageSource | null)[];
  },
  size: number,
): Promise<PreparedMasks> {
  const notices: string[] = [];
  const load = async (src: ImageSource, what: string): Promise<Mask> => {
    const m = await env.loadMask(src);
    if (isEmptyMask(m))
      throw new UsageError(
        `${describe(src, what)} is black everywhere, so it selects nothing: paint white where the style should apply`,
      );
    return m;
  };
  const prepared: PreparedMasks = { notices };
  const several = options.styles.length > 1;
  if (options.masks !== undefined) {
    const photo = await env.imageSize(options.content);
    prepared.masks = await Promise.all(
      options.masks.map(async (src, i) => {
        const what = several ? `mask ${i + 1}` : "the mask";
        const m = await load(src, what);
        const notice = sizeNotice(describe(src, what), m, photo, "the photo");
        if (notice) notices.push(notice);
        return m;
      }),
    );
    const out = fitLongEdge(photo, size);
    const { uncovered, overlapping } = maskCoverage(
      prepared.masks.map((m) => resizeMask(m, out.width, out.height)),
    );
    if (uncovered > 0.005)
      notices.push(
        `the mask${several ? "s leave" : " leaves"} ${percent(uncovered)}% of the photo black${several ? " in every mask" : ""}: there the picture gets no style, it keeps the photo's content`,
      );
    if (overlapping > 0.005)
      notices.push(
        `the masks overlap on ${percent(overlapping)}% of the photo: there each of those styles applies in full, and the picture mixes them`,
      );
  }
  if (options.styleMasks !== undefined) {
    prepared.styleMasks = await Promise.all(
      options.styleMasks.map(async (src, i) => {
        if (src === null) return undefined;
        const what = several ? `style mask ${i + 1}` : "the style mask";
        const m = await load(src, what);
        const style = options.styles[i] as ImageSource;
        const notice = sizeNotice(describe(src, what), m, await env.imageSize(style), `its style image`);
        if (notice) notices.push(notice);
        return m;
      }),
    );
  }
  return prepared;
}
