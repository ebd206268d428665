import { execFile } from "node:child_process";
import os from "node:os";
import { Graph } from "../graph/graph.js";
import { toOnnx } from "../graph/serialize.js";

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
