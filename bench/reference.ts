import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { runJson, SHARED } from "./common.js";

const PYTHON = "/usr/bin/python3";
const REFERENCE = path.join(SHARED, "reference");

export function referenceAvailable(): boolean {
  if (!fs.existsSync(PYTHON) || !fs.existsSync(path.join(REFERENCE, "reference.py"))) return false;
  return spawnSync(PYTHON, ["-c", "import torch, PIL"], { stdio: "ignore" }).status === 0;
}

export const REFERENCE_MISSING = `reference.py not measured: ${PYTHON} lacks torch/PIL (apt-get install python3-torch python3-pil libopenblas0-pthread)`;

// Times reference.py's own Objective (forward + backward of the total) with all cores, as its `run` command does.
const TIMER = `
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
import torch
import reference as R
torch.set_num_threads(os.cpu_count())
content, style, evals = sys.argv[2], sys.argv[3], int(sys.argv[4])
w = R.load_vgg19()
c = R.preprocess(R.load_png(content)); s = R.preprocess(R.load_png(style))
obj = R.Objective(w, c, s, ["relu4_2"], ["relu1_1","relu2_1","relu3_1","relu4_1","relu5_1"],
                  content_weight=5.0, style_weight=500.0, tv_weight=1e-3, pooling="max")
bf16 = sys.argv[5] == "bfloat16"
def once():
    x = c.clone().requires_grad_(True)
    # --dtype bfloat16 as reference.py does it: one line of CPU autocast, the loss back in float32.
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = obj.total(x)
    loss.float().backward()
once()
times = []
for _ in range(evals):
    t = time.perf_counter(); once(); times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"medianSeconds": times[len(times)//2], "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

export type ReferenceDtype = "float32" | "bfloat16";

export function referenceEvaluation(content: string, style: string, evals: number, dtype: ReferenceDtype) {
  return runJson<{ medianSeconds: number; peakRssMiB: number }>(PYTHON, [
    "-c",
    TIMER,
    REFERENCE,
    content,
    style,
    String(evals),
    dtype,
  ]);
}

// reference.py's run command (same L-BFGS, same objective) with --dtype bfloat16, keeping every iterate; then
// the first iterate whose float32 loss reaches TARGET, found by bisection on the (nearly monotone)
// float32 losses of the iterates, outside the timed run.
const BF16_TO_QUALITY = `
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import torch
import reference as R
torch.set_num_threads(os.cpu_count())
content, style, evals, target = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
w = R.load_vgg19()
c = R.preprocess(R.load_png(content)); s = R.preprocess(R.load_png(style))
obj = R.Objective(w, c, s, ["relu4_2"], ["relu1_1","relu2_1","relu3_1","relu4_1","relu5_1"],
                  content_weight=5.0, style_weight=500.0, tv_weight=1e-3, pooling="max")
x = c.clone().requires_grad_(True)
opt = torch.optim.LBFGS([x], lr=1, max_iter=evals, history_size=100, tolerance_grad=-1, tolerance_change=-1)
iterates, seconds = [], []
t0 = time.perf_counter()
def closure():
    opt.zero_grad()
    iterates.append(x.detach().clone())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = obj.total(x)
    loss = loss.float()
    loss.backward()
    seconds.append(time.perf_counter() - t0)
    return loss
opt.step(closure)
def f32(i):
    with torch.no_grad():
        return float(obj.total(iterates[i]))
lo, hi = 0, len(iterates) - 1
if f32(hi) > target:
    print(json.dumps({"reached": False, "eval": hi + 1, "loss": f32(hi), "seconds": seconds[hi]}))
else:
    while lo < hi:
        mid = (lo + hi) // 2
        if f32(mid) <= target: hi = mid
        else: lo = mid + 1
    print(json.dumps({"reached": True, "eval": lo + 1, "loss": f32(lo), "seconds": seconds[lo]}))
`;

/** reference.py with --dtype bfloat16: the seconds until its iterate, evaluated in float32, reaches TARGET. */
export function referenceBf16ToQuality(content: string, style: string, evals: number, target: number) {
  return runJson<{ reached: boolean; eval: number; loss: number; seconds: number }>(PYTHON, [
    "-c",
    BF16_TO_QUALITY,
    REFERENCE,
    content,
    style,
    String(evals),
    String(target),
  ]);
}

export interface ReferenceRun {
  /** One entry per evaluation: the loss and the seconds since the optimisation started. */
  evals: { eval: number; loss: number; seconds: number }[];
  wallSeconds: number;
}

/** reference.py run: L-BFGS from the content image, one JSON line per evaluation. */
export function referenceStylize(
  content: string,
  style: string,
  size: number,
  iterations: number,
): ReferenceRun {
  const t = performance.now();
  const out = execFileSync(
    PYTHON,
    [
      path.join(REFERENCE, "reference.py"),
      "run",
      content,
      style,
      "--size",
      String(size),
      "--iterations",
      String(iterations),
    ],
    { encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "inherit"] },
  );
  const evals = out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { eval: number; loss: number; seconds: number });
  return { evals, wallSeconds: (performance.now() - t) / 1000 };
}
