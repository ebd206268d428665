import { Kind, type TSchema } from "@sinclair/typebox";
import { expectedOf } from "./check.js";
import { flagOf, GROUP_TITLES, type Group, OPTIONS, type OptionSpec } from "./registry.js";

/** What a schema takes, lists with their items: "a list of finite numbers >= 0". */
function takesOf(schema: TSchema): string {
  if (schema[Kind] === "Array") {
    // "a whole number >= 1" -> "whole numbers >= 1"
    const item = expectedOf(schema.items as TSchema).replace(/^an? /, "");
    return `a list of ${item.replace(/(number|string)/, "$1s")}`;
  }
  if (schema[Kind] === "Union" && !(schema.anyOf as TSchema[]).every((b) => b[Kind] === "Literal"))
    return (schema.anyOf as TSchema[]).map(takesOf).join(", or ");
  return expectedOf(schema);
}

/** docs/options.md, written from the registry (npm run docs:options; a test keeps the file current). */
export function optionsMarkdown(): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  const defaultOf = (o: OptionSpec) =>
    o.defaultText ??
    (o.default === undefined ? "" : Array.isArray(o.default) ? o.default.join(",") : String(o.default));
  const rows = (group: Group) =>
    (OPTIONS as readonly OptionSpec[])
      .filter((o) => o.group === group && o.scope !== "cli" && o.flag !== null)
      .concat((OPTIONS as readonly OptionSpec[]).filter((o) => o.group === group && o.scope === "cli"))
      .map((o) => {
        const flag = flagOf(o.name);
        const library = o.scope === "cli" ? "(CLI only)" : `\`${o.name}\``;
        const takes = o.schema ? takesOf(o.schema) : (o.arg ?? "");
        const help = `${o.help}${o.more ? `; ${o.more}` : ""}`;
        return `| ${flag ? `\`${flag}${o.arg ? ` ${o.arg}` : ""}\`` : ""} | ${library} | ${cell(takes)} | ${cell(defaultOf(o))} | ${cell(help)} |`;
      });
  const groups = Object.keys(GROUP_TITLES) as Group[];
  return [
    "# Options",
    "",
    "Every option of `stylegram` (the CLI), `stylize()`, `stylizeBatch()`, `stylizeVideo()` and `computeLoss()` (the library) and the web API, from",
    "one table in the source (`src/options/registry.ts`). This page is written from it by `npm run docs:options`;",
    "do not edit it by hand. The CLI's flag, the library's name and the API's JSON field name the same option;",
    "the web API caps some values lower (GET /api/options serves its schema).",
    "",
    ...groups.flatMap((g) => [
      `## ${GROUP_TITLES[g]}`,
      "",
      "| flag | library | takes | default | what it does |",
      "| --- | --- | --- | --- | --- |",
      ...rows(g),
      "",
    ]),
    "## Library only",
    "",
    "`content` and `styles` (file paths or `RgbImage`s), `onStage`, `onProgress`, `onSnapshot` with `snapshotEvery`,",
    "and `signal` (an `AbortSignal`): see [the library](library.md). `temporal` (a video frame's target and certainty)",
    "and `targetCache` (style targets shared by many calls): see [video](video.md) and [batch](batch.md).",
    "",
  ].join("\n");
}
