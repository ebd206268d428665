import { CONV_LAYERS } from "./layers.js";

/** Output channels of VGG19's five blocks. Loaders take other widths only so that tests can use tiny files. */
export const VGG19_WIDTHS: readonly number[] = [64, 128, 256, 512, 512];

/** [in, out] channels of a convolution (conv1_1 .. conv5_4) for the given block widths. */
export function convChannels(
  conv: string,
  widths: readonly number[] = VGG19_WIDTHS,
): readonly [number, number] {
  const at = CONV_LAYERS.indexOf(conv);
  if (at < 0) throw new Error(`not a VGG19 convolution: ${conv}`);
  const out = widths[Number(conv[4]) - 1] as number;
  const previous = at === 0 ? undefined : (CONV_LAYERS[at - 1] as string);
  const cin = previous === undefined ? 3 : (widths[Number(previous[4]) - 1] as number);
  return [cin, out];
}
