import { parseArgs } from "node:util";
import { computeLoss } from "../../api/loss.js";
import { UsageError } from "../../errors.js";
import { assertNotAnInput, checkWritable, writeFileAtomic } from "../../fsutil/atomic.js";
import type { ObjectiveOptions } from "../../objective/options.js";
import type { DeviceRequest } from "../../runtime/device.js";
import { flagHelp, optionsFromFlags, parseArgsOptions, withFlagErrors } from "../options.js";
import { joinNegativeValues, valueFlags } from "../parse.js";
import { weightsFor } from "../weights.js";

export const LOSS_HELP = `Usage: stylegram loss --content C --style S [--style S2 ...] --image X [options]

Prints every term of the objective for image X against content image C and
style image(s) S, and the weighted total, as one JSON object:
  {"total": N, "content": {"relu4_2": N}, "style": {"relu1_1": N, ...}, "tv": N}
Terms are unweighted; the total is weighted. Images are used at their own
size (no resizing): X must have C's size, S may have any size.

  --content FILE        the content image
  --style FILE          a style image; repeat for several (see --style-blend)
  --image FILE          the image to evaluate
  --grad-out FILE       also write d(total)/d(pixels) as raw little-endian
                        float32, NCHW 1x3xHxW, in the 0..255 pixel space
  -f, --force           overwrite the --grad-out file if it exists

${flagHelp("loss", ["objective", "runtime"])}

Example:
  stylegram loss --content photo.jpg --style painting.jpg --image result.png`;

const LOSS_FLAGS = {
  ...parseArgsOptions("loss"),
  content: { type: "string" },
  style: { type: "string", multiple: true },
  image: { type: "string" },
  "grad-out": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export const LOSS_FLAG_NAMES = Object.keys(LOSS_FLAGS);

export async function lossCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(argv, valueFlags(LOSS_FLAGS)),
    options: LOSS_FLAGS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(`${LOSS_HELP}\n`);
    return 0;
  }
  return withFlagErrors(values, async () => {
    if (positionals.length > 0)
      throw new UsageError(`loss takes no positional arguments: ${positionals.join(" ")}`);
    if (!values.content) throw new UsageError("loss needs --content FILE");
    if (!values.image) throw new UsageError("loss needs --image FILE");
    const styles = values.style ?? [];
    const {
      force = false,
      fetch,
      weights,
      tile,
      threads,
      device,
      ...options
    } = optionsFromFlags("loss", values) as {
      force?: boolean;
      fetch?: boolean;
      weights?: string;
      tile?: number;
      threads?: number;
      device?: DeviceRequest;
    } & ObjectiveOptions;
    const gradOut = values["grad-out"];
    if (gradOut) {
      assertNotAnInput(gradOut, [values.content, values.image, ...styles]);
      checkWritable(gradOut, force);
    }
    const e = await computeLoss({
      content: values.content,
      styles,
      image: values.image,
      options,
      weights: await weightsFor(weights, fetch === true),
      ...(threads === undefined ? {} : { threads }),
      ...(device === undefined ? {} : { device }),
      ...(tile === undefined ? {} : { tile }),
    });
    if (gradOut)
      writeFileAtomic(
        gradOut,
        new Uint8Array(e.gradient.buffer, e.gradient.byteOffset, e.gradient.byteLength),
        {
          overwrite: force,
        },
      );
    out(`${JSON.stringify({ total: e.total, content: e.content, style: e.style, tv: e.tv })}\n`);
    return 0;
  });
}
