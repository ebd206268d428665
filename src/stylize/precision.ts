import type { PrecisionRequest } from "./options.js";

/**
 * The share of each scale's evaluations that `mixed` runs in float32, at the end. The int8 phase does
 * the bulk of the descent; the float32 phase removes int8's bias, so the picture is float32's optimum.
 */
export const MIXED_FP32_SHARE = 0.1;

export interface Phase {
  precision: "fp32" | "int8";
  evaluations: number;
}

/** The phases of one scale's optimisation: one for fp32 and int8; int8 then float32 for mixed. */
export function precisionPhases(precision: PrecisionRequest, evaluations: number): Phase[] {
  if (precision !== "mixed") return [{ precision, evaluations }];
  const last = Math.max(1, Math.round(evaluations * MIXED_FP32_SHARE));
  // Too few evaluations to be worth a calibration and a switch: float32 throughout.
  if (evaluations - last < 2) return [{ precision: "fp32", evaluations }];
  return [
    { precision: "int8", evaluations: evaluations - last },
    { precision: "fp32", evaluations: last },
  ];
}
