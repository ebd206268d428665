import assert from "node:assert/strict";
import { gradient } from "../../src/autodiff/backward.js";
import { Graph, type Tensor } from "../../src/graph/graph.js";
import { CompiledGraph } from "../../src/runtime/session.js";
import { randomArray } from "./random.js";

/**
 * Checks d(loss)/dx of `build` against central finite differences, where
 * loss = sum(build(x) * r) for a fixed random r, so every output element
 * weighs in with a different coefficient.
 */
export async function checkGradient(
  shape: number[],
  build: (g: Graph, x: Tensor) => Tensor,
  options: { x?: Float32Array; eps?: number; tol?: number; seed?: number } = {},
): Promise<void> {
  const g = new Graph();
  const x = g.input("x", shape);
  const y = build(g, x);
  const ys = y.shape as number[];
  const r = g.constant(
    randomArray(
      ys.reduce((a, b) => a * b, 1),
      (options.seed ?? 1) + 100,
    ),
    ys,
  );
  const loss = g.op1("ReduceSum", [g.op1("Mul", [y, r])], { keepdims: 0 });
  g.output(loss, "loss");
  g.output(gradient(g, loss, x), "grad");
  const compiled = await CompiledGraph.compile(g, { threads: 1 });
  const size = shape.reduce((a, b) => a * b, 1);
  const x0 = options.x ?? randomArray(size, options.seed ?? 1);
  const run = async (data: Float32Array) =>
    (await compiled.run({ x: { data, dims: shape } })) as Record<string, { data: Float32Array }>;
  const analytic = (await run(x0)).grad?.data as Float32Array;
  assert.equal(analytic.length, size);
  const eps = options.eps ?? 1e-2;
  const numeric = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const plus = Float32Array.from(x0);
    const minus = Float32Array.from(x0);
    plus[i] = (plus[i] as number) + eps;
    minus[i] = (minus[i] as number) - eps;
    const lp = (await run(plus)).loss?.data[0] as number;
    const lm = (await run(minus)).loss?.data[0] as number;
    numeric[i] = (lp - lm) / (2 * eps);
  }
  await compiled.release();
  let err = 0;
  let norm = 0;
  for (let i = 0; i < size; i++) {
    err += ((analytic[i] as number) - (numeric[i] as number)) ** 2;
    norm += (numeric[i] as number) ** 2;
  }
  const rel = Math.sqrt(err) / Math.max(Math.sqrt(norm), 1e-6);
  assert.ok(norm > 0, "the finite-difference gradient is zero: the check would prove nothing");
  assert.ok(
    rel < (options.tol ?? 2e-3),
    `relative L2 error ${rel.toExponential(3)} against finite differences`,
  );
}
