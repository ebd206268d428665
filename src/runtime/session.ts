import type { InferenceSession, Tensor } from "onnxruntime-node";
import type { Graph } from "../graph/graph.js";
import { toOnnx } from "../graph/serialize.js";
import { type Device, noAdapterError } from "./device.js";
import { cores, ort, PLATFORM } from "./platform.js";

export interface RuntimeOptions {
  /** Threads for one operator; onnxruntime's own default uses one core, so we default to all of them. */
  threads?: number;
  /** Where the graph runs (default "cpu"). */
  device?: Device;
}

export function defaultThreads(): number {
  return Math.max(1, cores());
}

/**
 * The threads onnxruntime gets for a request: more than the cores only adds
 * contention (measured: --threads 1000 turned seconds into minutes), so the
 * request is capped at the cores this process may use.
 */
export function effectiveThreads(requested: number | undefined): number {
  return requested === undefined ? defaultThreads() : Math.max(1, Math.min(requested, defaultThreads()));
}

/** A compiled graph, run on onnxruntime's CPU backend. */
export class CompiledGraph {
  private constructor(
    private readonly session: InferenceSession,
    readonly outputNames: readonly string[],
  ) {}

  static async compile(g: Graph, options: RuntimeOptions = {}): Promise<CompiledGraph> {
    const bytes = toOnnx(g);
    const common: InferenceSession.SessionOptions = {
      intraOpNumThreads: effectiveThreads(options.threads),
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      enableCpuMemArena: true,
      enableMemPattern: true,
    };
    let session: InferenceSession;
    if (options.device === "webgpu") {
      try {
        session = await ort.InferenceSession.create(bytes, {
          ...common,
          executionProviders: ["webgpu"],
          // A node the provider lacks would silently run on the CPU, with copies both ways on every
          // evaluation: refuse that, so that a graph either runs wholly on the GPU or not at all.
          extra: { session: { disable_cpu_ep_fallback: "1" } },
        });
      } catch (e) {
        if (/WebGPU adapter|webgpu_context/i.test((e as Error).message)) throw noAdapterError(e);
        throw e;
      }
    } else {
      // The CPU: onnxruntime's own kernels in Node, its WebAssembly build in a browser.
      session = await ort.InferenceSession.create(bytes, {
        ...common,
        executionProviders: [PLATFORM === "node" ? "cpu" : "wasm"],
      });
    }
    return new CompiledGraph(
      session,
      g.outputs.map((t) => t.name),
    );
  }

  /** Runs the graph; `fetches` limits the outputs computed and returned. */
  async run(
    feeds: Record<string, { data: Float32Array; dims: readonly number[] }>,
    fetches?: readonly string[],
  ): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
    const inputs: Record<string, Tensor> = {};
    for (const [name, { data, dims }] of Object.entries(feeds)) {
      inputs[name] = new ort.Tensor("float32", data, dims);
    }
    const results = fetches ? await this.session.run(inputs, [...fetches]) : await this.session.run(inputs);
    const out: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const [name, t] of Object.entries(results)) {
      out[name] = { data: t.data as Float32Array, dims: t.dims };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
