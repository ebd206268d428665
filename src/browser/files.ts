/**
 * The files a page needs beside each other to run stylegram in the browser: the module, its worker,
 * and onnxruntime-web's wasm build (which the worker loads from its own folder). `stylegram serve` and
 * `npm run build:site` serve or copy them; the package ships only the first two (dist/browser/), the
 * wasm build comes from the onnxruntime-web package (scripts/build-browser.ts checks the names).
 */
export const MODULE_FILE = "stylegram-browser.js";
export const WORKER_FILE = "stylegram-worker.js";
/** onnxruntime-web's WebGPU build (its WebGPU provider compiled with asyncify), which also runs wasm. */
export const ORT_FILES = [
  "ort-wasm-simd-threaded.asyncify.mjs",
  "ort-wasm-simd-threaded.asyncify.wasm",
] as const;
