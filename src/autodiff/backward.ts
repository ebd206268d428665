import type { Graph, Tensor } from "../graph/graph.js";
import { staticShape } from "../graph/graph.js";
import { gradRules, type NodeView } from "./rules.js";

/**
 * Appends to `g` the nodes computing d(loss)/d(wrt) by reverse-mode
 * differentiation and returns that gradient. Only nodes that both depend on
 * `wrt` and feed `loss` are differentiated; everything else (the weights, the
 * targets) is treated as constant.
 */
export function gradient(g: Graph, loss: Tensor, wrt: Tensor): Tensor {
  const lossShape = staticShape(loss);
  if (lossShape.some((d) => d !== 1)) throw new Error(`gradient: ${loss.name} is not a scalar`);
  const forwardNodes = g.nodes.slice();

  // Values that depend on wrt, in one forward sweep over the (topologically ordered) nodes.
  const active = new Set<string>([wrt.name]);
  for (const n of forwardNodes) {
    if (n.inputs.some((i) => active.has(i))) for (const o of n.outputs) active.add(o);
  }
  // Values that loss depends on, in one backward sweep.
  const needed = new Set<string>([loss.name]);
  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const n = forwardNodes[i];
    if (n?.outputs.some((o) => needed.has(o))) for (const x of n.inputs) if (x !== "") needed.add(x);
  }
  if (!needed.has(wrt.name)) throw new Error(`gradient: ${loss.name} does not depend on ${wrt.name}`);

  const contributions = new Map<string, Tensor[]>();
  const add = (name: string, t: Tensor) => {
    const list = contributions.get(name);
    if (list) list.push(t);
    else contributions.set(name, [t]);
  };
  // Several contributions to one value are summed once, when the value is first read.
  const total = (name: string): Tensor | undefined => {
    const list = contributions.get(name);
    if (!list || list.length === 0) return undefined;
    let sum = list[0] as Tensor;
    for (const t of list.slice(1)) sum = g.op1("Add", [sum, t]);
    contributions.set(name, [sum]);
    return sum;
  };

  add(loss.name, g.constant(new Float32Array([1]), lossShape));

  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const node = forwardNodes[i];
    if (!node) continue;
    if (!node.outputs.some((o) => needed.has(o) && active.has(o))) continue;
    const dOut = node.outputs.map((o) => total(o));
    if (dOut.every((t) => t === undefined)) continue;
    const rule = gradRules[node.op];
    if (!rule) throw new Error(`no gradient rule for op ${node.op}`);
    const needs = node.inputs.map((x) => x !== "" && active.has(x) && needed.has(x));
    const view: NodeView = {
      node,
      inputs: node.inputs.map((x) => (x === "" ? { name: "", shape: [], dtype: "float32" } : g.get(x))),
      outputs: node.outputs.map((o) => g.get(o)),
    };
    const dIn = rule(g, view, dOut, needs);
    node.inputs.forEach((x, k) => {
      const d = dIn[k];
      if (needs[k] && d) add(x, d);
    });
  }
  const result = total(wrt.name);
  if (!result) throw new Error(`gradient: no path from ${wrt.name} to ${loss.name}`);
  return result;
}
