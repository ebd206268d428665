/**
 * The library's public entry points called from JavaScript with wrong types and
 * ranges: every mistake is a StylegramError (UsageError) that names the option,
 * what it must be and what it got; none is a TypeError or RangeError.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StoppedBeforeStartError } from "../src/errors.js";
import { computeLoss, StylegramError, type StylizeOptions, stylize, UsageError } from "../src/index.js";

const image = (w: number, h: number) => ({ width: w, height: h, data: new Uint8Array(w * h * 3).fill(128) });
const base = (): StylizeOptions => ({
  content: image(40, 32),
  styles: [image(32, 32)],
  size: 32,
  iterations: 2,
});

/** Asserts a UsageError (a StylegramError) whose message matches. */
async function refuses(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(
      e instanceof UsageError && e instanceof StylegramError,
      `${(e as Error)?.name}: ${(e as Error)?.message}`,
    );
    assert.match((e as Error).message, message);
    return true;
  });
}

describe("stylize() refuses bad options with the option's name", () => {
  // Cast: these are the mistakes a JavaScript caller (or a JSON request) makes.
  const bad = (o: Record<string, unknown>) => stylize({ ...base(), ...o } as unknown as StylizeOptions);
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      "styles as a string",
      { styles: "painting.jpg" },
      /styles must be a list \(array\), got the string "painting.jpg"/,
    ],
    ["content undefined", { content: undefined }, /content is required: a photo's file path or an RgbImage/],
    ["content a number", { content: 7 }, /content must be an image file path or an RgbImage/],
    [
      "a broken RgbImage",
      { content: { width: 4, height: 4, data: new Uint8Array(3) } },
      /content.data must be a Uint8Array of width x height x 3 = 48 bytes \(RGB\), got 3 bytes/,
    ],
    ["historySize 0", { historySize: 0 }, /historySize must be a whole number >= 1, got 0/],
    [
      "iterations as a string",
      { iterations: "128" },
      /iterations must be a whole number >= 1, got the string "128"/,
    ],
    ["learningRate -1", { learningRate: -1 }, /learningRate must be a finite number > 0, got -1/],
    ["learningRate 0", { learningRate: 0 }, /learningRate must be a finite number > 0, got 0/],
    ["threads 0", { threads: 0 }, /threads must be a whole number >= 1, got 0/],
    [
      "lineSearch bogus",
      { lineSearch: "bogus" },
      /lineSearch must be one of "none", "strong-wolfe", got the string "bogus"/,
    ],
    ["optimizer sgd", { optimizer: "sgd" }, /optimizer must be one of "lbfgs", "adam"/],
    ["init bogus", { init: "photo.jpg" }, /init must be "noise", "content", "style" or \{ image: FILE \}/],
    [
      "styleWeight as a string",
      { styleWeight: "500" },
      /styleWeight must be a finite number >= 0, got the string "500"/,
    ],
    [
      "contentLayers as a string",
      { contentLayers: "relu4_2" },
      /contentLayers must be a list \(array\), got the string "relu4_2"/,
    ],
    ["an unknown layer", { styleLayers: ["relu9_9"] }, /unknown layer "relu9_9"/],
    ["pooling bogus", { pooling: "min" }, /pooling must be one of "max", "avg", got the string "min"/],
    [
      "a misspelt option",
      { iteration: 5 },
      /stylize\(\) has no option "iteration" \(did you mean "iterations"\?\)/,
    ],
    ["onProgress not a function", { onProgress: "log" }, /onProgress must be a function/],
    ["signal not an AbortSignal", { signal: { aborted: true } }, /signal must be an AbortSignal/],
    ["maxMemory negative", { maxMemory: -1 }, /maxMemory must be a finite number > 0/],
  ];
  for (const [name, options, message] of cases) {
    test(name, () => refuses(bad(options), message));
  }

  test("an already-aborted signal stops before any evaluation", async () => {
    const controller = new AbortController();
    controller.abort();
    let evaluations = 0;
    await assert.rejects(
      stylize({ ...base(), signal: controller.signal, onProgress: () => void evaluations++ }),
      StoppedBeforeStartError,
    );
    assert.equal(evaluations, 0);
  });
});

describe("computeLoss() refuses bad requests with the field's name", () => {
  const bad = (o: Record<string, unknown>) =>
    computeLoss({ content: image(32, 32), styles: [image(32, 32)], image: image(32, 32), ...o } as never);
  test("content missing", () => refuses(bad({ content: undefined }), /content is required/));
  test("styles not a list", () =>
    refuses(bad({ styles: image(32, 32) }), /styles must be a list \(array\), got an object/));
  test("threads a string", () =>
    refuses(bad({ threads: "2" }), /threads must be a whole number >= 1, got the string "2"/));
  test("a misspelt objective option", () =>
    refuses(
      bad({ options: { styleWieght: 1000 } }),
      /computeLoss\(\) options has no option "styleWieght" \(did you mean "styleWeight"\?\)/,
    ));
  test("an unknown field", () =>
    refuses(bad({ style: [] }), /computeLoss\(\) has no option "style" \(did you mean "styles"\?\)/));
});

describe("the errors a caller can meet", () => {
  test("are exported, each under its own name, all StylegramErrors", async () => {
    const lib = await import("../src/index.js");
    for (const name of [
      "UsageError",
      "OutOfMemoryError",
      "DivergedError",
      "StoppedError",
      "StoppedBeforeStartError",
    ] as const) {
      const Class = lib[name] as unknown as new (m: string) => Error;
      assert.equal(typeof Class, "function", `${name} is exported`);
      const e = new Class("x");
      assert.equal(e.name, name);
      assert.ok(e instanceof lib.StylegramError);
    }
    assert.equal(new lib.StylegramError("x").name, "StylegramError");
  });
});
