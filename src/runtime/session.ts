import { execFile } from "node:child_process";
import os from "node:os";
import ort from "onnxruntime-node";
import { Graph } from "../graph/graph.js";
import { toOnnx } from "../graph/serialize.js";
import { type Device, noAdapterError } from "./device.js";

// onnxruntime 1.30's Linux build carries Microsoft's telemetry SDK, which leaves a mat-debug-<pid>.log
// in the temporary folder of every process and would upload usage events where a network is reachable.
// A local tool sends nothing anywhere: it is off unless the user sets ORT_DISABLE_TELEMETRY=0 themselves.
// (Read when onnxruntime creates its environment, at the first session, so setting it here is in time.)
process.env.ORT_DISABLE_TELEMETRY ??= "1";

export interface RuntimeOptions {
  /** Threads for one operator; onnxruntime's own default uses one core, so we default to all of them. */
  threads?: number;
  /** Where the graph runs (default "cpu"). */
  device?: Device;
}

export function defaultThreads(): number {
  return Math.max(1, os.availableParallelism());
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
    private readonly session: ort.InferenceSession,
    readonly outputNames: readonly string[],
  ) {}

  static async compile(g: Graph, options: RuntimeOptions = {}): Promise<CompiledGraph> {
    const bytes = toOnnx(g);
    const common: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: effectiveThreads(options.threads),
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      enableCpuMemArena: true,
      enableMemPattern: true,
    };
    let session: ort.InferenceSession;
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
      session = await ort.InferenceSession.create(bytes, { ...common, executionProviders: ["cpu"] });
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
    const inputs: Record<string, ort.Tensor> = {};
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

/** The probe's child: opens the WebGPU provider on a one-node model and runs it. */
const PROBE = `
const ort = (await import(process.env.STYLEGRAM_ORT_URL)).default;
const model = Buffer.from(process.env.STYLEGRAM_PROBE_MODEL, "base64");
const s = await ort.InferenceSession.create(model, {
  executionProviders: ["webgpu"],
  extra: { session: { disable_cpu_ep_fallback: "1" } },
});
await s.run({ x: new ort.Tensor("float32", new Float32Array(4), [1, 4]) });
process.stdout.write("ok");
`;

/**
 * Whether the WebGPU provider can run a graph here: undefined if it can, or
 * what went wrong. It runs in a child process, because Dawn and the Vulkan
 * loader write their warnings straight to the terminal (and a broken driver can
 * crash a process): `auto` should decide quietly.
 */
export async function probeWebGpu(timeoutMs = 30_000): Promise<string | undefined> {
  const g = new Graph();
  g.output(g.op1("Relu", [g.input("x", [1, 4])]), "y");
  const result = await new Promise<{ ok: boolean; stderr: string; timedOut: boolean }>((resolve) => {
    execFile(
      process.execPath,
      ["--input-type=module", "-e", PROBE],
      {
        timeout: timeoutMs,
        env: {
          ...process.env,
          XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? os.tmpdir(),
          STYLEGRAM_ORT_URL: import.meta.resolve("onnxruntime-node"),
          STYLEGRAM_PROBE_MODEL: Buffer.from(toOnnx(g)).toString("base64"),
        },
      },
      (error, stdout, stderr) =>
        resolve({
          ok: !error && stdout === "ok",
          stderr,
          timedOut: (error as { killed?: boolean })?.killed === true,
        }),
    );
  });
  if (result.ok) return undefined;
  if (result.timedOut) return "the GPU did not answer within 30 s";
  if (/Failed to get a WebGPU adapter/.test(result.stderr)) return "onnxruntime found no adapter";
  const line = result.stderr.split("\n").find((l) => /error/i.test(l));
  return line?.trim() ?? "the WebGPU provider did not start";
}
