import type { VggWeights } from "../network/weights.js";
import { weightsFor } from "./weights.js";

/** The weights `serve`'s --weights and --fetch ask for (see weights.ts). */
export async function weightsFromFlags(
  v: { weights?: string | boolean; fetch?: string | boolean },
  signal?: AbortSignal,
): Promise<VggWeights> {
  return weightsFor(typeof v.weights === "string" ? v.weights : undefined, v.fetch === true, signal);
}
