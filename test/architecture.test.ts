/**
 * The layout shows the architecture: data flows one way, graph -> autodiff -> network -> losses ->
 * objective -> optim -> stylize -> api -> server / browser -> queue -> cli (the queue implements the server's
 * line of jobs and runs its worker processes; the server never imports it). No module imports one above it, and no
 * import cycle exists. Read from the sources with TypeScript's own pre-processor.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "src");

/** Each room's layer; a module may import its own layer and those below it. */
const LAYERS: Record<string, number> = {
  "errors.ts": 0,
  "validate.ts": 0,
  "version.ts": 0,
  options: 1,
  fsutil: 1,
  graph: 2,
  autodiff: 3,
  image: 4,
  network: 4,
  models: 5,
  runtime: 5,
  motion: 5,
  video: 5,
  losses: 6,
  quantize: 7,
  objective: 8,
  optim: 9,
  stylize: 10,
  api: 11,
  server: 12,
  queue: 12,
  // The browser module: a shell over stylize and api like the server, which serves its files.
  browser: 12,
  cli: 13,
  "index.ts": 14,
};

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const room = (file: string) => path.relative(SRC, file).split(path.sep)[0] as string;

function imports(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true);
  return info.importedFiles
    .map((i) => i.fileName)
    .filter((n) => n.startsWith("."))
    .map((n) => path.resolve(path.dirname(file), n.replace(/\.js$/, ".ts")));
}

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, imports(f)]));

test("every room of src/ has a layer", () => {
  const rooms = [...new Set(files.map(room))];
  assert.deepEqual(
    rooms.filter((r) => LAYERS[r] === undefined),
    [],
    "a new folder needs its place in LAYERS",
  );
});

test("no module imports one from a higher layer", () => {
  const upward: string[] = [];
  for (const [file, deps] of graph) {
    for (const dep of deps) {
      const from = LAYERS[room(file)] as number;
      const to = LAYERS[room(dep)] as number;
      if (to > from) upward.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, dep)}`);
    }
  }
  assert.deepEqual(upward, []);
});

test("no import cycle", () => {
  const cycles: string[] = [];
  const done = new Set<string>();
  const onPath: string[] = [];
  const visit = (f: string) => {
    const at = onPath.indexOf(f);
    if (at >= 0) {
      cycles.push([...onPath.slice(at), f].map((x) => path.relative(SRC, x)).join(" -> "));
      return;
    }
    if (done.has(f)) return;
    onPath.push(f);
    for (const d of graph.get(f) ?? []) visit(d);
    onPath.pop();
    done.add(f);
  };
  for (const f of files) visit(f);
  assert.deepEqual(cycles, []);
});

test("the queue builds on the server, never the other way: nothing in src/server imports src/queue", () => {
  const back = [...graph]
    .filter(([file]) => room(file) === "server")
    .flatMap(([file, deps]) =>
      deps
        .filter((d) => room(d) === "queue")
        .map((d) => `${path.relative(SRC, file)} -> ${path.relative(SRC, d)}`),
    );
  assert.deepEqual(back, []);
});

test("the browser module is a shell over stylize and api: it imports no server, queue or cli, and nothing of Node's", () => {
  const platform = path.join(SRC, "runtime", "platform.ts");
  const nodeOnly = /^(node:|onnxruntime-node$|sharp$|fastify|@fastify\/|h5wasm$|env-paths$|bullmq$|ioredis$)/;
  const bad: string[] = [];
  const seen = new Set<string>();
  const visit = (f: string) => {
    // runtime/platform.ts is the one Node module the browser build swaps (for platform-web.ts).
    if (seen.has(f) || f === platform) return;
    seen.add(f);
    if (["server", "queue", "cli"].includes(room(f))) bad.push(`${path.relative(SRC, f)} (a Node shell)`);
    // Imports of types only leave nothing in the bundle.
    const code = fs.readFileSync(f, "utf8").replace(/^(import|export) type [^;]*;/gms, "");
    const names = ts.preProcessFile(code, true, true).importedFiles.map((x) => x.fileName);
    for (const i of names.filter((n) => nodeOnly.test(n))) bad.push(`${path.relative(SRC, f)} imports ${i}`);
    for (const n of names.filter((x) => x.startsWith(".")))
      visit(path.resolve(path.dirname(f), n.replace(/\.js$/, ".ts")));
  };
  for (const entry of ["index.ts", "worker.ts"]) visit(path.join(SRC, "browser", entry));
  assert.deepEqual(bad, []);
});
