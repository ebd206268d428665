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
def once():
    x = c.clone().requires_grad_(True)
    obj.total(x).backward()
once()
times = []
for _ in range(evals):
    t = time.perf_counter(); once(); times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"medianSeconds": times[len(times)//2], "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

export function referenceEvaluation(content: string, style: string, evals: number) {
  return runJson<{ medianSeconds: number; peakRssMiB: number }>(PYTHON, [
    "-c",
    TIMER,
    REFERENCE,
    content,
    style,
    String(evals),
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
