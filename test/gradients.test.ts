import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { gradient } from "../src/autodiff/backward.js";
import { gradRules } from "../src/autodiff/rules.js";
import { Graph, type Tensor } from "../src/graph/graph.js";
import { checkGradient } from "./support/finite-differences.js";
import { randomArray, rng } from "./support/random.js";

/** Values away from 0 and pairwise distinct, so ReLU and max pooling have no kink within eps. */
function awayFromKinks(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const order = Array.from({ length: n }, (_, i) => i).sort(() => r() - 0.5);
  return Float32Array.from(order, (k) => (k - n / 2 + 0.5) * 0.1);
}

const tested = new Set<string>();
function rule(op: string, name: string, fn: () => Promise<void>) {
  tested.add(op);
  test(`${op}: ${name}`, fn);
}

describe("gradient rules agree with central finite differences", () => {
  rule("Identity", "passes the gradient through", () =>
    checkGradient([2, 3], (g, x) => g.op1("Identity", [x])),
  );
  rule("Neg", "negates", () => checkGradient([2, 3], (g, x) => g.op1("Neg", [x])));
  rule("Relu", "masks where the input is negative", () =>
    checkGradient([1, 2, 3, 4], (g, x) => g.op1("Relu", [x]), { x: awayFromKinks(24, 3) }),
  );
  rule("Add", "broadcasts a smaller operand", () =>
    checkGradient([2, 1, 3], (g, x) => g.op1("Add", [g.constant(randomArray(12, 5), [2, 2, 3]), x])),
  );
  rule("Add", "adds a value to itself", () => checkGradient([4], (g, x) => g.op1("Add", [x, x])));
  rule("Sub", "both operands, with broadcasting", () =>
    checkGradient([3, 1], (g, x) =>
      g.op1("Sub", [g.op1("Mul", [x, x]), g.op1("Reshape", [x, g.ints([1, 3])])]),
    ),
  );
  rule("Mul", "product of the input with itself and a constant", () =>
    checkGradient([2, 3], (g, x) => g.op1("Mul", [g.op1("Mul", [x, x]), g.constant(randomArray(3, 7), [3])])),
  );
  rule("MatMul", "Gram matrix F F^T, both operands from the input", () =>
    checkGradient([3, 5], (g, x) => g.op1("MatMul", [x, g.op1("Transpose", [x], { perm: [1, 0] })])),
  );
  rule("MatMul", "both operands from the input, not a Gram matrix", () =>
    checkGradient([3, 3], (g, x) =>
      g.op1("MatMul", [x, g.op1("Mul", [x, g.constant(randomArray(9, 8), [3, 3])])]),
    ),
  );
  rule("MatMul", "batched, constant right operand", () =>
    checkGradient([2, 3, 4], (g, x) => g.op1("MatMul", [x, g.constant(randomArray(8, 9), [4, 2])])),
  );
  rule("Transpose", "a 4-D permutation", () =>
    checkGradient([1, 2, 3, 4], (g, x) => g.op1("Transpose", [x], { perm: [0, 3, 1, 2] })),
  );
  rule("Reshape", "flattens and restores", () =>
    checkGradient([1, 2, 3, 2], (g, x) => g.op1("Reshape", [x, g.ints([2, -1])])),
  );
  rule("Expand", "broadcasts to a larger shape", () =>
    checkGradient([3, 1], (g, x) => g.op1("Expand", [x, g.ints([2, 3, 4])])),
  );
  rule("ReduceSum", "over some axes, keepdims", () =>
    checkGradient([2, 3, 4], (g, x) => g.op1("ReduceSum", [x, g.ints([0, 2])], { keepdims: 1 })),
  );
  rule("ReduceSum", "over all axes to a scalar", () =>
    checkGradient([2, 3], (g, x) => g.op1("ReduceSum", [g.op1("Mul", [x, x])], { keepdims: 0 })),
  );
  rule("ReduceMean", "over one axis, no keepdims", () =>
    checkGradient([2, 3, 4], (g, x) => g.op1("ReduceMean", [x], { axes: [1], keepdims: 0 })),
  );
  rule("ReduceMean", "over all axes", () =>
    checkGradient([3, 4], (g, x) => g.op1("ReduceMean", [g.op1("Mul", [x, x])], { keepdims: 0 })),
  );
  rule("Slice", "neighbour differences, as in total variation", () =>
    checkGradient([1, 1, 3, 4], (g, x) =>
      g.op1("Sub", [
        g.op1("Slice", [x, g.ints([1]), g.ints([4]), g.ints([3])]),
        g.op1("Slice", [x, g.ints([0]), g.ints([-1]), g.ints([-1])]),
      ]),
    ),
  );
  rule("Pad", "zero padding", () =>
    checkGradient([2, 3], (g, x) => g.op1("Pad", [x, g.ints([1, 0, 2, 1])], { mode: "constant" })),
  );
  rule("Conv", "3x3, padding 1, as in VGG", () =>
    checkGradient([1, 3, 5, 6], (g, x) =>
      g.op1(
        "Conv",
        [x, g.constant(randomArray(4 * 3 * 9, 11), [4, 3, 3, 3]), g.constant(randomArray(4, 12), [4])],
        {
          kernel_shape: [3, 3],
          pads: [1, 1, 1, 1],
        },
      ),
    ),
  );
  rule("Conv", "2x3 kernel, asymmetric padding", () =>
    checkGradient([1, 2, 4, 5], (g, x) =>
      g.op1("Conv", [x, g.constant(randomArray(3 * 2 * 6, 13), [3, 2, 2, 3])], {
        kernel_shape: [2, 3],
        pads: [0, 1, 1, 0],
      }),
    ),
  );
  rule("MaxPool", "2x2 stride 2 routes to the arg-max", () =>
    checkGradient(
      [1, 2, 4, 6],
      (g, x) => g.op("MaxPool", [x], { kernel_shape: [2, 2], strides: [2, 2] }, { nOutputs: 2 })[0] as Tensor,
      { x: awayFromKinks(48, 17) },
    ),
  );
  rule("MaxPool", "odd input size drops the last row and column", () =>
    checkGradient(
      [1, 1, 5, 5],
      (g, x) => g.op("MaxPool", [x], { kernel_shape: [2, 2], strides: [2, 2] }, { nOutputs: 2 })[0] as Tensor,
      { x: awayFromKinks(25, 19) },
    ),
  );
  rule("MaxPool", "without Indices (WebGPU): routed by comparing with the maximum", () =>
    checkGradient(
      [1, 2, 4, 6],
      (g, x) => g.op("MaxPool", [x], { kernel_shape: [2, 2], strides: [2, 2] }, { nOutputs: 1 })[0] as Tensor,
      { x: awayFromKinks(48, 17) },
    ),
  );
  rule("MaxPool", "without Indices, odd input size", () =>
    checkGradient(
      [1, 1, 5, 7],
      (g, x) => g.op("MaxPool", [x], { kernel_shape: [2, 2], strides: [2, 2] }, { nOutputs: 1 })[0] as Tensor,
      { x: awayFromKinks(35, 19) },
    ),
  );
  rule("AveragePool", "2x2 stride 2", () =>
    checkGradient([1, 2, 4, 6], (g, x) =>
      g.op1("AveragePool", [x], { kernel_shape: [2, 2], strides: [2, 2] }),
    ),
  );
  rule("AveragePool", "odd input size", () =>
    checkGradient([1, 1, 5, 7], (g, x) =>
      g.op1("AveragePool", [x], { kernel_shape: [2, 2], strides: [2, 2] }),
    ),
  );

  after(() => {
    const untested = Object.keys(gradRules).filter((op) => !tested.has(op));
    assert.deepEqual(untested, [], `gradient rules without a finite-difference test: ${untested.join(", ")}`);
  });
});

test("gradient refuses a non-scalar loss and a loss that does not depend on the input", () => {
  const g = new Graph();
  const x = g.input("x", [2]);
  const y = g.op1("Mul", [x, x]);
  assert.throws(() => gradient(g, y, x), /not a scalar/);
  const other = g.input("other", [2]);
  const loss = g.op1("ReduceSum", [other], { keepdims: 0 });
  assert.throws(() => gradient(g, loss, x), /does not depend/);
});
