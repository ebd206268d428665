import type { Graph, Tensor } from "../graph/graph.js";
import { gramUnnormalised, styleLoss } from "./style.js";

/**
 * Guided Gram matrices (Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer",
 * section 4): the style of one region of the picture, from the features weighted by the region's mask.
 *
 * For a 1 x C x h x w activation F and a region's mask m (1 x 1 x h x w, at the layer's size):
 *
 *   G_r = (F * m)(F * m)^T / (C * sum(m^2))
 *
 * that is, the mean of F(p) F(p)^T / C over the positions p, each weighted by m(p)^2: a region's Gram
 * does not grow with the region's area, so regions of any size compare with their targets (the
 * guidance channels of the authors' code are normalised the same way). With m = 1 everywhere,
 * sum(m^2) = h * w and G_r is the plain Gram F F^T / (C h w) of the objective's spec.
 *
 * The normaliser `scale` = 1 / (C * sum(m^2)) is an input (a scalar computed from the whole mask), not
 * computed here from m: evaluated by tiles, each tile sees part of the mask, but the normaliser
 * belongs to the whole region. Only existing ops are used (Mul, Reshape, Transpose, MatMul), so the
 * gradient comes from their rules; test/masks.test.ts checks it against finite differences.
 */
export function guidedGram(g: Graph, features: Tensor, mask: Tensor, scale: Tensor): Tensor {
  return g.op1("Mul", [guidedGramUnnormalised(g, features, mask), scale]);
}

/** (F * m)(F * m)^T without the normaliser: a tile's part, which adds up with the others'. */
export function guidedGramUnnormalised(g: Graph, features: Tensor, mask: Tensor): Tensor {
  return gramUnnormalised(g, g.op1("Mul", [features, mask]));
}

/** One region of a style layer: what its term is computed from. */
export interface RegionTerm {
  /** C x C: the region's unnormalised guided Gram matrix (F * m)(F * m)^T of the whole picture. */
  gram: Tensor;
  /** [] : 1 / (C * sum(mask^2)). */
  scale: Tensor;
  /** [] : the region's share of the layer, sum(mask) / (h * w). */
  share: Tensor;
  /** C x C: the region's target Gram matrix. */
  target: Tensor;
  /** Multiplies the region's term (1 for equal weights). */
  weight: number;
}

export interface Region extends Omit<RegionTerm, "gram"> {
  /** 1 x 1 x h x w, the region's mask at the layer. */
  mask: Tensor;
}

/**
 * style(l) with regions = sum over regions r of weight_r * share_r * mean over C*C of (G_r(x) - T_r)^2.
 *
 * share_r, the region's share of the picture, makes each pixel pulled towards its region's style as
 * hard as a pixel of a plain one-style transfer, whatever the region's size: G_r is a mean over the
 * region, so d G_r / d F(p) grows as 1 / area_r, and without the share a small region would be
 * stylized far harder than a large one (at 5% of the picture, 20 times harder per pixel than with one
 * style), and two regions covering the picture would take twice the style of one. The authors' code
 * weighs every region by 1 / (number of regions), which is the same only for regions of equal size.
 * With one region whose mask is white everywhere (share 1) and weight 1, this is the unguided
 * style(l) exactly.
 */
export function guidedStyleTerm(g: Graph, regions: readonly RegionTerm[]): Tensor {
  let total: Tensor | undefined;
  for (const r of regions) {
    let term = g.op1("Mul", [styleLoss(g, r.gram, r.scale, r.target), r.share]);
    if (r.weight !== 1) term = g.op1("Mul", [term, g.scalar(r.weight)]);
    total = total === undefined ? term : g.op1("Add", [total, term]);
  }
  if (total === undefined) throw new Error("guidedStyleTerm: no region");
  return total;
}

/** The guided style term of a layer's features, each region's Gram computed from them. */
export function guidedStyleLoss(g: Graph, features: Tensor, regions: readonly Region[]): Tensor {
  return guidedStyleTerm(
    g,
    regions.map((r) => ({ ...r, gram: guidedGramUnnormalised(g, features, r.mask) })),
  );
}
