import { apiAllows, apiMaximum } from "./options.js";

/** A suggested value in a library message's advice: "(--size 900)". */
const SUGGESTION = /\((--[a-z-]+) ([^\s),]+)\)/g;

/**
 * A library message whose advice suggests a value the API refuses (a style
 * image so narrow that it would take --size 62000, where the API stops at
 * 4096) loses those alternatives and says that they are over this server's
 * limits instead. The advice is what follows the first ": ", alternatives
 * joined by "or"; the others stay as they were.
 */
export function withinApiLimits(message: string): string {
  const refused = (text: string) =>
    [...text.matchAll(SUGGESTION)].filter(([, flag, value]) => !apiAllows(flag as string, value as string));
  const over = refused(message);
  const colon = message.indexOf(": ");
  if (over.length === 0 || colon < 0) return message;
  const kept = message
    .slice(colon + 2)
    .split(/,? or /)
    .filter((alternative) => refused(alternative).length === 0);
  const limits = [...new Set(over.map(([, flag]) => flag as string))]
    .map((flag) => `${flag.slice(2).replace(/-/g, " ")} at most ${apiMaximum(flag)}`)
    .join(", ");
  const head = message.slice(0, colon);
  const fix = `at the sizes this server allows (${limits}), crop the image to a less narrow shape`;
  if (kept.length === 0) return `${head}: ${fix}`;
  const advice = kept.join(", or ").replace(/^(an? )/, "use $1");
  return `${head}: ${advice}; or, ${fix}`;
}
