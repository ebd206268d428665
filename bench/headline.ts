/**
 * The bench's headline: time to a finished picture. At each size, the default command (start-up
 * included) against reference.py in float32 and in bfloat16 (CPU autocast), each for 300 L-BFGS
 * evaluations from the photo, as a user runs them; every final picture is then scored by the same
 * float32 objective (`stylegram loss`), so the losses compare exactly. The runs interleave, so that
 * a busy machine slows all of them alike.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fmt, printTable, ROOT, SHARED, WEIGHTS } from "./common.js";

const PYTHON = "/usr/bin/python3";
const CLI = ["--import", "tsx", path.join(ROOT, "src", "cli", "run.ts")];

interface Run {
  seconds: number;
  loss: number;
}

export function timed(command: string, args: string[]): number {
  const t = performance.now();
  execFileSync(command, args, { stdio: ["ignore", "ignore", "inherit"] });
  return (performance.now() - t) / 1000;
}

/** The float32 loss of a picture on the objective, by `stylegram loss`, against the photo at its size. */
export function lossOf(content: string, style: string, picture: string): number {
  // The photo and the painting at the picture's size, as both programs resized them for the run.
  const out = execFileSync(
    process.execPath,
    [...CLI, "loss", "--content", content, "--style", style, "--image", picture, "--weights", WEIGHTS],
    { encoding: "utf8", cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
  );
  return (JSON.parse(out.trim().split("\n").pop() as string) as { total: number }).total;
}

export interface HeadlineRow {
  size: number;
  ours: Run;
  f32?: Run;
  bf16?: Run;
}

/**
 * One size: the default command and reference.py's two runs; `prepare` writes the photo and the
 * painting at the size (the same pixels for both programs).
 */
export async function headline(
  dir: string,
  size: number,
  content: string,
  style: string,
  withReference: boolean,
  extraArgs: string[] = [],
): Promise<HeadlineRow> {
  const ours = path.join(dir, `ours_${size}.png`);
  fs.rmSync(ours, { force: true });
  const oursSeconds = timed(process.execPath, [
    ...CLI,
    content,
    style,
    "-o",
    ours,
    "--size",
    String(size),
    "--weights",
    WEIGHTS,
    ...extraArgs,
  ]);
  const row: HeadlineRow = { size, ours: { seconds: oursSeconds, loss: lossOf(content, style, ours) } };
  if (!withReference) return row;
  for (const dtype of ["float32", "bfloat16"] as const) {
    const out = path.join(dir, `ref_${dtype}_${size}.png`);
    const seconds = timed(PYTHON, [
      path.join(SHARED, "reference", "reference.py"),
      "run",
      content,
      style,
      "--size",
      String(size),
      "--iterations",
      "300",
      "--dtype",
      dtype,
      "--output",
      out,
    ]);
    const run = { seconds, loss: lossOf(content, style, out) };
    if (dtype === "float32") row.f32 = run;
    else row.bf16 = run;
  }
  return row;
}

export function printHeadline(rows: HeadlineRow[]): void {
  console.log(
    "\nTime to a finished picture (the headline): the default command against reference.py's 300 L-BFGS evaluations, wall seconds with start-up; every picture scored by the same float32 objective:",
  );
  printTable(
    [
      "size",
      "default s",
      "default loss",
      "ref f32 s",
      "ref f32 loss",
      "ref bf16 s",
      "ref bf16 loss",
      "vs ref f32",
      "vs ref bf16",
      "loss vs ref f32",
    ],
    rows.map((r) => [
      String(r.size),
      fmt(r.ours.seconds, 1),
      r.ours.loss.toExponential(4),
      fmt(r.f32?.seconds, 1),
      r.f32 ? r.f32.loss.toExponential(4) : "-",
      fmt(r.bf16?.seconds, 1),
      r.bf16 ? r.bf16.loss.toExponential(4) : "-",
      r.f32 ? `${fmt(r.f32.seconds / r.ours.seconds)}x` : "-",
      r.bf16 ? `${fmt(r.bf16.seconds / r.ours.seconds)}x` : "-",
      r.f32 ? fmt(r.ours.loss / r.f32.loss, 4) : "-",
    ]),
  );
}
