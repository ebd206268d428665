/**
 * `npm run bench:lbfgs`: the time of one L-BFGS step (append the new pair, compute the direction
 * d = -H g) at full history, for today's two-loop recursion in JavaScript and the compact form with
 * its products in JavaScript and in onnxruntime (1 thread, the default, and all cores). The histories run
 * interleaved, step by step, so that load from elsewhere falls on all alike; medians of the repeats.
 *
 *   npm run bench:lbfgs [-- --sizes 256,512,1024 --history 100 --repeats 5]
 * A size is the long edge of a 4:3 picture: n = 3 x size x 3/4 size numbers.
 */
import fs from "node:fs";
import os from "node:os";
import { CompactHistory, JsProducts, type PairProducts } from "../src/optim/compact.js";
import type { LbfgsHistory } from "../src/optim/history.js";
import { OnnxProducts } from "../src/optim/onnx-products.js";
import { TwoLoopHistory } from "../src/optim/two-loop.js";
import { arg, fmt, median, printTable } from "./common.js";

/** One PairProducts at a time, so that every compact candidate runs on the same pairs (one history in memory). */
class Switch implements PairProducts {
  constructor(public current: PairProducts) {}
  dots(h: Float32Array, rows: number, g: Float32Array) {
    return this.current.dots(h, rows, g);
  }
  combine(h: Float32Array, rows: number, c: Float32Array, gamma: number, g: Float32Array, d: Float32Array) {
    return this.current.combine(h, rows, c, gamma, g, d);
  }
  async dispose() {}
}

/** A step's inputs for one history: it walks its own chain g -> g + d/2 + noise, so every pair is kept. */
class Walk {
  g: Float32Array;
  d: Float32Array;
  constructor(
    readonly history: LbfgsHistory,
    start: Float32Array,
  ) {
    this.g = Float32Array.from(start);
    this.d = start.map((v) => -v);
  }

  async step(noise: Float32Array): Promise<void> {
    const gPrev = this.g;
    const g = new Float32Array(gPrev.length);
    for (let i = 0; i < g.length; i++)
      g[i] = (gPrev[i] as number) + 0.5 * (this.d[i] as number) + (noise[i] as number);
    const kept = await this.history.append(1, this.d, g, gPrev);
    if (!kept) throw new Error("bench: a pair was refused");
    await this.history.direction(g, kept.sy / kept.yy, this.d);
    this.g = g;
  }
}

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) / 2 ** 32 - 0.5;
  }
  return out;
}

function cpuModel(): string {
  const line = fs
    .readFileSync("/proc/cpuinfo", "utf8")
    .split("\n")
    .find((l) => l.startsWith("model name"));
  return line?.split(":")[1]?.trim() ?? os.cpus()[0]?.model ?? "?";
}

async function main(): Promise<void> {
  const sizes = arg("--sizes", "256,512,1024").split(",").filter(Boolean).map(Number);
  const m = Number(arg("--history", "100"));
  const repeats = Number(arg("--repeats", "5"));
  const cores = os.availableParallelism();
  console.log(
    `L-BFGS step at full history (${m} pairs) on ${cpuModel()}, ${cores} cores, Node ${process.version}`,
  );
  console.log(
    `load average before: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}\n`,
  );
  const rows: string[][] = [];
  for (const size of sizes) {
    const n = 3 * size * Math.round((3 * size) / 4);
    const start = random(n, size);
    const plain = new TwoLoopHistory(m, n);
    const js = new JsProducts(n);
    const onnx1 = new OnnxProducts(n, 1);
    const onnxAll = new OnnxProducts(n, cores);
    const products = new Switch(onnxAll);
    const compact = new CompactHistory(m, n, products);
    const walks = { plain: new Walk(plain, start), compact: new Walk(compact, start) };
    // Fill both histories (the directions of the two-loop are skipped: at 1024 px they would take minutes).
    for (let k = 0; k < m; k++) {
      const noise = random(n, 1000 + k);
      for (const w of Object.values(walks)) {
        const g = w.g.map((v, i) => v + 0.5 * (w.d[i] as number) + (noise[i] as number));
        await w.history.append(1, w.d, g, w.g);
        w.g = g;
        w.d = noise.map((v) => -v);
      }
    }
    const candidates: [string, Walk, PairProducts | undefined][] = [
      ["two-loop, JavaScript (today)", walks.plain, undefined],
      ["compact, JavaScript", walks.compact, js],
      ["compact, onnxruntime 1 thread (default)", walks.compact, onnx1],
      [`compact, onnxruntime ${cores} threads`, walks.compact, onnxAll],
    ];
    const times = new Map<string, number[]>();
    // Repeat 0 warms up: JIT, sessions, and the first direction of each history.
    for (let r = 0; r <= repeats; r++) {
      const noise = random(n, 5000 + r);
      for (const [name, walk, p] of candidates) {
        if (p) products.current = p;
        const t = performance.now();
        await walk.step(noise);
        const ms = performance.now() - t;
        if (r > 0) times.set(name, [...(times.get(name) ?? []), ms]);
      }
    }
    const base = median(times.get(candidates[0]?.[0] as string) ?? []);
    for (const [name] of candidates) {
      const t = times.get(name) ?? [];
      const ms = median(t);
      rows.push([
        `${size} px (n = ${n})`,
        name,
        fmt(ms, 1),
        `${fmt(Math.min(...t), 1)} .. ${fmt(Math.max(...t), 1)}`,
        `${fmt(base / ms, 1)}x`,
        fmt((2 * 2 * m * n * 4) / 1e6 / ms, 1),
      ]);
    }
    await Promise.all([plain.dispose(), compact.dispose(), onnx1.dispose(), onnxAll.dispose()]);
  }
  printTable(
    ["size", "history", "step ms (median)", "min .. max", "speed-up", "GB/s (pairs read twice)"],
    rows,
  );
  console.log(
    `\nload average after: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  console.log(
    `history memory, either form: 2 x ${m} x n float32 (${fmt((2 * m * 4 * 3 * 512 * 384) / 2 ** 20, 0)} MiB at 512 px); the compact form adds 2 x ${m}^2 float64.`,
  );
}

await main();
