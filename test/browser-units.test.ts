/**
 * The browser module's pure parts, in Node: which device a request gets from an adapter (and why),
 * and errors crossing from the worker to the page with their class and the browser's wording.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type AdapterReport, chooseBrowserDevice, isSoftwareAdapter } from "../src/browser/device.js";
import { fromWire, toWire } from "../src/browser/protocol.js";
import { message, OutOfMemoryError, opt, StoppedError, StylegramError, UsageError } from "../src/errors.js";

const limits = { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30 };
const gpu: AdapterReport = {
  available: true,
  software: false,
  name: "nvidia ampere",
  maxBindingBytes: 2 ** 30,
};
const swiftshader: AdapterReport = { available: true, software: true, name: "google swiftshader" };
const none: AdapterReport = {
  available: false,
  software: false,
  name: "",
  problem: "the browser gave no WebGPU adapter",
};

test("software adapters are told from GPUs by their info or the fallback flag", () => {
  assert.equal(isSoftwareAdapter({ info: { vendor: "google", architecture: "swiftshader" }, limits }), true);
  assert.equal(
    isSoftwareAdapter({ info: { description: "llvmpipe (LLVM 15.0.6, 256 bits)" }, limits }),
    true,
  );
  assert.equal(isSoftwareAdapter({ info: { vendor: "intel", isFallbackAdapter: true }, limits }), true);
  assert.equal(isSoftwareAdapter({ isFallbackAdapter: true, limits }), true);
  assert.equal(isSoftwareAdapter({ info: { vendor: "nvidia", architecture: "ampere" }, limits }), false);
  assert.equal(isSoftwareAdapter({ info: { vendor: "apple", architecture: "metal-3" }, limits }), false);
});

test("auto takes a GPU, and wasm where the only adapter is a software one or there is none, saying why", () => {
  assert.deepEqual(chooseBrowserDevice("auto", gpu), {
    device: "webgpu",
    reason: "a GPU adapter answered (nvidia ampere)",
  });
  assert.deepEqual(chooseBrowserDevice("auto", swiftshader), {
    device: "cpu",
    reason: "the only WebGPU adapter is a software one (google swiftshader)",
  });
  assert.deepEqual(chooseBrowserDevice("auto", none), {
    device: "cpu",
    reason: "the browser gave no WebGPU adapter",
  });
  // Asked for, a software adapter is taken (the tests run on it).
  assert.deepEqual(chooseBrowserDevice("webgpu", swiftshader), {
    device: "webgpu",
    reason: "asked for (google swiftshader)",
  });
  assert.deepEqual(chooseBrowserDevice("cpu", gpu), { device: "cpu", reason: "asked for" });
  assert.throws(
    () => chooseBrowserDevice("webgpu", none),
    (e: Error) =>
      e instanceof StylegramError &&
      /no WebGPU adapter is usable here \(the browser gave no WebGPU adapter\): device: "wasm" runs on any browser/.test(
        e.message,
      ),
  );
});

test("errors cross the worker with their class, their option and the browser's name for the CPU", () => {
  const usage = fromWire(
    toWire(new UsageError(message`int8 needs the CPU: use ${opt("device", "cpu")}`, { option: "precision" })),
  );
  assert.ok(usage instanceof UsageError);
  assert.equal(usage.message, 'int8 needs the CPU: use device: "wasm"');
  assert.equal((usage as UsageError).option, "precision");
  assert.ok(fromWire(toWire(new StoppedError())) instanceof StoppedError);
  assert.ok(fromWire(toWire(new OutOfMemoryError("too large", { exitCode: 2 }))) instanceof OutOfMemoryError);
  const bug = fromWire(toWire(new TypeError("x is undefined")));
  assert.equal(bug.name, "TypeError");
  assert.equal(bug.message, "x is undefined");
});
