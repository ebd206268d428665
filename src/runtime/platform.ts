import os from "node:os";
import ortNode from "onnxruntime-node";

/**
 * What differs between Node and a browser at the runtime's level, in one module: which onnxruntime
 * (onnxruntime-node here; the browser build swaps this module for platform-web.ts, which gives
 * onnxruntime-web, the same API) and how many cores there are.
 */
export const PLATFORM: "node" | "web" = "node";

// onnxruntime 1.30's Linux build carries Microsoft's telemetry SDK, which leaves a mat-debug-<pid>.log
// in the temporary folder of every process and would upload usage events where a network is reachable.
// A local tool sends nothing anywhere: it is off unless the user sets ORT_DISABLE_TELEMETRY=0 themselves.
// (Read when onnxruntime creates its environment, at the first session, so setting it here is in time.)
process.env.ORT_DISABLE_TELEMETRY ??= "1";

export const ort = ortNode;

export function cores(): number {
  return os.availableParallelism();
}

/**
 * Memory this process can still use: what the system reports available, and
 * no more than a container's limit (cgroup) leaves.
 */
export function availableMemory(): number {
  const free = os.freemem();
  const limit = process.constrainedMemory?.() ?? 0;
  const inContainer = limit > 0 && limit < os.totalmem();
  return inContainer ? Math.min(free, limit - process.memoryUsage.rss()) : free;
}
