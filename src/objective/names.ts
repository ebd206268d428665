/**
 * The names of the objective graphs' inputs and outputs, in one place: the graph builders, the
 * evaluators that feed them and the tests read them from here.
 *
 * Inputs (float32):
 * - `x`: the picture, or the tile's crop of it, 1 x 3 x H x W (network input: RGB minus the mean).
 * - `content_target_<l>`: 1 x C x h x w, the content features (a tile: its crop of them).
 * - `style_target_<l>`: C x C, the blended target Gram matrix; with regions `style_target_<l>_<r>`.
 * - `style_mask_<l>_<r>`: 1 x 1 x h x w, region r's mask at the layer (a tile: its crop);
 *   `style_mask_scale_<l>_<r>`: [], 1 / (C * sum of the whole mask's squares), the guided Gram's
 *   normaliser; `style_mask_share_<l>_<r>`: [], the region's share of the layer (see losses/guided.ts).
 * - `valid_<k>`, `own_<k>`: 1 x 1 x h x w at pooling level k, for a tile: 1 where the crop lies in the
 *   picture, and where the tile owns the position (src/objective/tiling.ts).
 * - `temporal_target`: 1 x 3 x H x W, the previous stylized frame warped to this one (a tile: its crop);
 *   `temporal_certainty`: 1 x 1 x H x W, each pixel's weight in the temporal term (src/losses/temporal.ts).
 * - `gram_<l>[_<r>]` (the style head's input) and `dgram_<l>[_<r>]` (the tile gradient graph's): the
 *   picture's unnormalised Gram matrix of a style layer (of a region), summed over tiles, and the
 *   total's derivative with respect to it.
 *
 * Outputs: `content_<l>`, `style_<l>`, `tv`, `temporal` (each term unweighted), `total`, `gradient` (d total/d x);
 * a tile's `partial` (its share of the gradient's objective); `feat_<l>` and `gram_<l>[_<r>]` of the
 * feature pass.
 *
 * r counts from 0 in the order of the style images.
 */
export const X = "x";
export const contentTarget = (l: string) => `content_target_${l}`;
export const styleTarget = (l: string) => `style_target_${l}`;
export const regionTarget = (l: string, r: number) => `style_target_${l}_${r}`;
export const regionMask = (l: string, r: number) => `style_mask_${l}_${r}`;
export const regionScale = (l: string, r: number) => `style_mask_scale_${l}_${r}`;
export const regionShare = (l: string, r: number) => `style_mask_share_${l}_${r}`;
export const validMaskInput = (level: number) => `valid_${level}`;
export const ownMaskInput = (level: number) => `own_${level}`;
/** A style layer's Gram matrix, of region r when given. */
export const gramName = (l: string, r?: number) => (r === undefined ? `gram_${l}` : `gram_${l}_${r}`);
export const dGramName = (l: string, r?: number) => (r === undefined ? `dgram_${l}` : `dgram_${l}_${r}`);
export const featuresName = (l: string) => `feat_${l}`;
export const contentTerm = (l: string) => `content_${l}`;
export const styleTerm = (l: string) => `style_${l}`;
export const TV = "tv";
export const TEMPORAL_TARGET = "temporal_target";
export const TEMPORAL_CERTAINTY = "temporal_certainty";
export const TEMPORAL = "temporal";
export const TOTAL = "total";
export const PARTIAL = "partial";
export const GRADIENT = "gradient";
/** The style head's weighted sum of the style terms. */
export const STYLE_TOTAL = "style_total";

export type Feeds = Record<string, { data: Float32Array; dims: readonly number[] }>;
