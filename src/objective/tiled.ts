import { throwIfStopped } from "../errors.js";
import { countFlops } from "../graph/flops.js";
import { channelsOf, poolsBefore } from "../network/layers.js";
import { type Precision, PrecisionGraph } from "../quantize/precision-graph.js";
import { CompiledGraph } from "../runtime/session.js";
import type { Evaluation, Evaluator, EvaluatorInit } from "./evaluator.js";
import { scalarOf } from "./evaluator.js";
import { featureGraph, styleHeadGraph, tileGradientGraph } from "./graphs.js";
import * as names from "./names.js";
import { cropLayerMask, maskLevels, type PassSpec, TiledPass, tileMaskFeeds } from "./passes.js";
import { masksAtLayers, regionFeeds, regionTargetFeeds } from "./regions.js";
import { targetsWith } from "./targets.js";
import { addCropPlanes, cropPlanes, cropSize, haloFor, levelSize, type TilePlan } from "./tiling.js";

/**
 * The objective evaluated tile by tile, exactly, in memory bounded by the tile (see tiling.ts for
 * how the picture is cut). Content and total variation are sums over owned positions; a style
 * layer's Gram matrix is the sum over tiles of F_t F_t^T, so an evaluation is two passes over the
 * tiles with the style head between them:
 *   1. the feature pass: each tile's part of the picture's Gram matrices, summed;
 *   2. the style head: the style terms from those sums, and dL/dG (src/objective/graphs.ts);
 *   3. per tile, forward and backward of content + TV + <dL/dG, G_tile>, whose gradient is the
 *      tile's share of the picture's.
 * The targets come from the same feature pass (src/objective/targets.ts). With styles by region each
 * region's guided Gram matrix is summed the same way; in int8 both tile graphs run quantised.
 */
export class TiledEvaluator implements Evaluator {
  private constructor(
    private readonly init: EvaluatorInit,
    /** The owned tile edge asked for, in pixels. */
    readonly tile: number,
    readonly plan: TilePlan,
    private readonly pass: TiledPass,
    private readonly head: { compiled: CompiledGraph; feeds: names.Feeds },
    private readonly gradient: { graph: PrecisionGraph; levels: { valid: number[]; own: number[] } },
    private readonly contentTargets: Map<string, Float32Array>,
    /** Styles by region: each region's mask at each style layer, over the whole picture. */
    private readonly regionMasks: Map<string, Float32Array>[] | undefined,
    readonly flops: number,
  ) {}

  static async create(init: EvaluatorInit & { tile: number }): Promise<TiledEvaluator> {
    const { o, content } = init;
    const regions = init.masks?.length ?? 0;
    const gpu = init.runtime?.device === "webgpu";
    const halo = haloFor([...o.contentLayers, ...o.styleLayers]);
    const images = [content, ...(o.styleLayers.length > 0 ? init.styles : [])];
    // One crop size for the picture and every style image, so that one graph serves them all.
    const crop = cropSize(
      init.tile,
      halo,
      Math.max(...images.map((i) => i.width)),
      Math.max(...images.map((i) => i.height)),
    );
    const spec: PassSpec = {
      weights: init.weights,
      o,
      poolIndices: !gpu,
      slots: regions,
      ...(init.runtime ? { runtime: init.runtime } : {}),
    };
    const pass = TiledPass.create(spec, crop, halo);
    const released: { release(): Promise<void> }[] = [pass];
    try {
      const request = {
        weights: init.weights,
        content,
        styles: init.styles,
        styleBlend: o.styleBlend,
        contentLayers: o.contentLayers,
        styleLayers: o.styleLayers,
        pooling: o.pooling,
        ...(init.masks ? { regions: { styleMasks: init.styleMasks ?? [] } } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
        ...(init.cache ? { cache: init.cache } : {}),
      };
      // The targets read one mask per image: with one region (or none) that is the picture's pass.
      const targetPass = regions <= 1 ? pass : TiledPass.create({ ...spec, slots: 1 }, crop, halo);
      const targets = await targetsWith(targetPass, request).finally(async () => {
        if (targetPass !== pass) await targetPass.release();
      });
      await pass.usePrecision(init.precision);

      const headFeeds: names.Feeds = {};
      for (const [l, data] of targets.style)
        headFeeds[names.styleTarget(l)] = { data, dims: [channelsOf(l), channelsOf(l)] };
      let masks: Map<string, Float32Array>[] | undefined;
      if (init.masks) {
        // The head reads each region's normaliser, share and target; the tiles read the masks.
        const fed = regionFeeds(init.masks, o.styleLayers);
        for (const [name, feed] of Object.entries(fed)) if (feed.dims.length === 0) headFeeds[name] = feed;
        Object.assign(headFeeds, regionTargetFeeds(targets.regions ?? []));
        masks = init.masks.map((m) => masksAtLayers(m, o.styleLayers));
      }
      const headGraph = styleHeadGraph(o, content, init.masks !== undefined);
      const head = { compiled: await CompiledGraph.compile(headGraph, init.runtime), feeds: headFeeds };
      released.push(head.compiled);
      throwIfStopped(init.signal);
      const layout = {
        kind: "crop" as const,
        ...crop,
        picture: { width: content.width, height: content.height },
      };
      const gg = tileGradientGraph(
        { weights: init.weights, o, poolIndices: !gpu },
        layout,
        regions,
        init.temporal !== undefined,
      );
      const gradient = {
        graph: new PrecisionGraph(gg, init.runtime, init.precision),
        levels: maskLevels(gg.inputs),
      };
      await gradient.graph.prepare();
      const plan = pass.plan(content.width, content.height);
      const flops =
        plan.tiles.length * (countFlops(featureGraph(spec, layout, regions)) + countFlops(gg)) +
        countFlops(headGraph);
      return new TiledEvaluator(init, init.tile, plan, pass, head, gradient, targets.content, masks, flops);
    } catch (e) {
      for (const r of released) await r.release();
      throw e;
    }
  }

  async usePrecision(precision: Precision): Promise<void> {
    await this.pass.usePrecision(precision);
    await this.gradient.graph.usePrecision(precision);
  }

  async evaluate(x: Float32Array): Promise<Evaluation> {
    const { o } = this.init;
    const { plan } = this;
    const { width, height, cropWidth: cw, cropHeight: ch } = plan;
    const regions = this.regionMasks?.length ?? 0;

    // 1. The picture's Gram matrices, summed over the tiles.
    const features = await this.pass.run(
      { x, width, height },
      { features: false, grams: o.styleLayers.length > 0 },
      this.regionMasks,
    );
    this.pass.endEvaluation();

    // 2. The style terms and dL/dG.
    const style: Record<string, number> = {};
    let styleTotal = 0;
    const dgrams: names.Feeds = {};
    if (o.styleLayers.length > 0) {
      const headFeeds: names.Feeds = { ...this.head.feeds };
      for (const l of o.styleLayers) {
        const c = channelsOf(l);
        (features.grams.get(l) as Float64Array[]).forEach((sum, r) => {
          headFeeds[names.gramName(l, regions === 0 ? undefined : r)] = {
            data: Float32Array.from(sum),
            dims: [c, c],
          };
        });
      }
      const out = await this.head.compiled.run(headFeeds);
      for (const l of o.styleLayers) {
        style[l] = scalarOf(out, names.styleTerm(l));
        const c = channelsOf(l);
        for (let r = 0; r < Math.max(1, regions); r++) {
          const name = names.dGramName(l, regions === 0 ? undefined : r);
          dgrams[name] = { data: out[name]?.data as Float32Array, dims: [c, c] };
        }
      }
      styleTotal = scalarOf(out, names.STYLE_TOTAL);
    }

    // 3. Each tile's content and TV terms and its share of the gradient.
    const grad = new Float32Array(3 * width * height);
    const content: Record<string, number> = {};
    for (const l of o.contentLayers) content[l] = 0;
    let tv = 0;
    let temporal = 0;
    const { temporal: frame } = this.init;
    const xCrop = new Float32Array(3 * ch * cw);
    const temporalCrops = frame && {
      target: new Float32Array(3 * ch * cw),
      certainty: new Float32Array(ch * cw),
    };
    const targetCrops = new Map(
      o.contentLayers.map((l) => [l, new Float32Array((channelsOf(l) * ch * cw) / 4 ** poolsBefore(l))]),
    );
    const maskCrops = new Map(
      o.styleLayers.map((l) => [
        l,
        Array.from({ length: regions }, () => new Float32Array((ch * cw) / 4 ** poolsBefore(l))),
      ]),
    );
    for (const tile of plan.tiles) {
      const feeds: names.Feeds = {
        ...tileMaskFeeds(plan, tile, this.gradient.levels),
        ...dgrams,
        [names.X]: {
          data: cropPlanes(x, 3, height, width, tile.top, tile.left, ch, cw, xCrop),
          dims: [1, 3, ch, cw],
        },
      };
      for (const l of o.contentLayers) {
        const level = poolsBefore(l);
        const s = 2 ** level;
        const c = channelsOf(l);
        feeds[names.contentTarget(l)] = {
          data: cropPlanes(
            this.contentTargets.get(l) as Float32Array,
            c,
            levelSize(height, level),
            levelSize(width, level),
            tile.top / s,
            tile.left / s,
            ch / s,
            cw / s,
            targetCrops.get(l) as Float32Array,
          ),
          dims: [1, c, ch / s, cw / s],
        };
      }
      if (frame && temporalCrops) {
        const crop = (data: Float32Array, planes: number, into: Float32Array) => ({
          data: cropPlanes(data, planes, height, width, tile.top, tile.left, ch, cw, into),
          dims: [1, planes, ch, cw],
        });
        feeds[names.TEMPORAL_TARGET] = crop(frame.target, 3, temporalCrops.target);
        feeds[names.TEMPORAL_CERTAINTY] = crop(frame.certainty, 1, temporalCrops.certainty);
      }
      for (const l of o.styleLayers) {
        const s = 2 ** poolsBefore(l);
        (maskCrops.get(l) as Float32Array[]).forEach((buffer, r) => {
          const data = cropLayerMask(this.regionMasks?.[r]?.get(l), plan, tile, l, buffer);
          feeds[names.regionMask(l, r)] = { data, dims: [1, 1, ch / s, cw / s] };
        });
      }
      const out = await this.gradient.graph.run(feeds);
      for (const l of o.contentLayers)
        content[l] = (content[l] as number) + scalarOf(out, names.contentTerm(l));
      tv += scalarOf(out, names.TV);
      if (frame) temporal += scalarOf(out, names.TEMPORAL);
      addCropPlanes(
        out[names.GRADIENT]?.data as Float32Array,
        3,
        height,
        width,
        tile.top,
        tile.left,
        ch,
        cw,
        grad,
      );
    }
    this.gradient.graph.endEvaluation();

    let total = o.tvWeight * tv + o.temporalWeight * temporal + styleTotal;
    o.contentLayers.forEach((l, i) => {
      total += o.contentWeight * (o.contentLayerWeights[i] as number) * (content[l] as number);
    });
    return { total, content, style, tv, ...(frame ? { temporal } : {}), gradient: grad };
  }

  async release(): Promise<void> {
    await this.pass.release();
    await this.head.compiled.release();
    await this.gradient.graph.release();
  }
}
