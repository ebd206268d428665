import { UsageError } from "../errors.js";
import { flagOf, type OptionSpec } from "../options/registry.js";
import { optionsOf } from "./options.js";

/**
 * Shell completion for bash, zsh and fish, written from the option registry: every command's flags
 * with their help, the choices of a flag that has a fixed set, files where a file goes.
 * `stylegram completion bash > ~/.local/share/bash-completion/completions/stylegram` and so on.
 */

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

/** A command's flags as completion sees them. */
interface Flag {
  flag: string;
  short?: string;
  help: string;
  /** Takes a value: its choices, or a file, or free text. */
  value?: { choices?: readonly string[]; file?: boolean };
}

const COMMANDS = ["batch", "video", "loss", "models", "serve", "worker", "help", "completion"] as const;

function choicesOf(o: OptionSpec): readonly string[] | undefined {
  if (o.cli?.choices) return o.cli.choices.filter((c) => c !== "FILE");
  const s = o.schema as { anyOf?: { const?: unknown }[] } | undefined;
  const consts = s?.anyOf?.map((b) => b.const);
  return consts?.every((c) => typeof c === "string") ? (consts as string[]) : undefined;
}

function registryFlags(command: "stylize" | "loss" | "batch" | "video"): Flag[] {
  return optionsOf(command).map((o) => {
    const takes = o.schema?.type !== "boolean";
    const choices = choicesOf(o);
    const file = /FILE|PATH/.test(o.arg ?? "");
    return {
      flag: flagOf(o.name) as string,
      ...(o.short ? { short: o.short } : {}),
      help: o.help,
      ...(takes ? { value: { ...(choices ? { choices } : {}), ...(file ? { file: true } : {}) } } : {}),
    };
  });
}

/** Each command's flags: the registry's, and those the commands state themselves. */
export function commandFlags(extra: {
  serve: Record<string, { type: string }>;
  worker: Record<string, { type: string }>;
  models: Record<string, { type: string }>;
}): Record<string, Flag[]> {
  const plain = (table: Record<string, { type: string }>) =>
    Object.entries(table)
      .filter(([n]) => n !== "help")
      .map(([n, o]) => ({ flag: `--${n}`, help: n, ...(o.type === "string" ? { value: {} } : {}) }));
  return {
    stylize: [...registryFlags("stylize"), { flag: "--help", short: "h", help: "show the options" }],
    batch: [...registryFlags("batch"), { flag: "--help", short: "h", help: "show the options" }],
    video: [...registryFlags("video"), { flag: "--help", short: "h", help: "show the options" }],
    loss: [
      { flag: "--content", help: "the content image", value: { file: true } },
      { flag: "--style", help: "a style image", value: { file: true } },
      { flag: "--image", help: "the image to evaluate", value: { file: true } },
      { flag: "--grad-out", help: "write the gradient here", value: { file: true } },
      ...registryFlags("loss"),
    ],
    serve: plain(extra.serve),
    worker: plain(extra.worker),
    models: plain(extra.models),
  };
}

const quote = (s: string) => s.replace(/'/g, "'\\''");

function bash(flags: Record<string, Flag[]>): string {
  const words = (list: Flag[]) => list.map((f) => f.flag).join(" ");
  const choiceCases = Object.values(flags)
    .flat()
    .filter((f) => f.value?.choices)
    .map(
      (f) =>
        `      ${f.flag}) COMPREPLY=($(compgen -W '${(f.value?.choices ?? []).join(" ")}' -- "$cur")); return ;;`,
    );
  const uniqueChoices = [...new Set(choiceCases)];
  const valueFlags = [
    ...new Set(
      Object.values(flags)
        .flat()
        .filter((f) => f.value && !f.value.choices)
        .map((f) => f.flag),
    ),
  ];
  return `# bash completion for stylegram (stylegram completion bash)
_stylegram() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" opts
  case "$prev" in
${uniqueChoices.join("\n")}
      ${valueFlags.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  case "\${COMP_WORDS[1]}" in
    batch) opts='${words(flags.batch ?? [])}' ;;
    video) opts='${words(flags.video ?? [])}' ;;
    loss) opts='${words(flags.loss ?? [])}' ;;
    serve) opts='${words(flags.serve ?? [])}' ;;
    worker) opts='${words(flags.worker ?? [])}' ;;
    models) opts='fetch list verify ${words(flags.models ?? [])}' ;;
    completion) opts='${SHELLS.join(" ")}' ;;
    help) opts='${COMMANDS.filter((c) => c !== "help").join(" ")}' ;;
    *) opts='${words(flags.stylize ?? [])}' ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W '${COMMANDS.join(" ")}' -- "$cur") $(compgen -f -- "$cur"))
  elif [[ "\${COMP_WORDS[1]}" =~ ^(models|completion|help)$ ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _stylegram stylegram
`;
}

function zsh(flags: Record<string, Flag[]>): string {
  const spec = (f: Flag) => {
    const help = quote(f.help.replace(/[[\]:]/g, " "));
    const value = f.value
      ? f.value.choices
        ? `:value:(${f.value.choices.join(" ")})`
        : f.value.file
          ? ":file:_files"
          : ":value: "
      : "";
    const names = f.short ? `'(-${f.short} ${f.flag})'{-${f.short},${f.flag}}'` : `'${f.flag}`;
    return `    ${names}[${help}]${value}'`;
  };
  const args = (list: Flag[]) => list.map(spec).join(" \\\n");
  return `#compdef stylegram
# zsh completion for stylegram (stylegram completion zsh)
_stylegram() {
  if (( CURRENT == 2 )) && [[ $words[2] != -* ]]; then
    _alternative 'commands:command:(${COMMANDS.join(" ")})' 'files:photo:_files'
    return
  fi
  case $words[2] in
    batch) _arguments '*:file:_files' \\
${args(flags.batch ?? [])} ;;
    video) _arguments '*:file:_files' \\
${args(flags.video ?? [])} ;;
    loss) _arguments \\
${args(flags.loss ?? [])} ;;
    serve) _arguments \\
${args(flags.serve ?? [])} ;;
    worker) _arguments \\
${args(flags.worker ?? [])} ;;
    models) _arguments '1:action:(fetch list verify)' \\
${args(flags.models ?? [])} ;;
    completion) _arguments '1:shell:(${SHELLS.join(" ")})' ;;
    help) _arguments '1:command:(${COMMANDS.filter((c) => c !== "help").join(" ")})' ;;
    *) _arguments '*:file:_files' \\
${args(flags.stylize ?? [])} ;;
  esac
}
_stylegram "$@"
`;
}

function fish(flags: Record<string, Flag[]>): string {
  const lines = [
    "# fish completion for stylegram (stylegram completion fish)",
    `complete -c stylegram -n __fish_use_subcommand -a '${COMMANDS.join(" ")}'`,
    `complete -c stylegram -n '__fish_seen_subcommand_from models' -f -a 'fetch list verify'`,
    `complete -c stylegram -n '__fish_seen_subcommand_from completion' -f -a '${SHELLS.join(" ")}'`,
  ];
  const others = COMMANDS.join(" ");
  for (const [command, list] of Object.entries(flags)) {
    const when =
      command === "stylize"
        ? `not __fish_seen_subcommand_from ${others}`
        : `__fish_seen_subcommand_from ${command}`;
    for (const f of list) {
      const parts = [`complete -c stylegram -n '${when}' -l ${f.flag.slice(2)}`];
      if (f.short) parts.push(`-s ${f.short}`);
      parts.push(`-d '${quote(f.help.slice(0, 80))}'`);
      if (f.value?.choices) parts.push(`-x -a '${f.value.choices.join(" ")}'`);
      else if (f.value?.file) parts.push("-r -F");
      else if (f.value) parts.push("-x");
      lines.push(parts.join(" "));
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The completion script for a shell. */
export function completionScript(shell: string, flags: Record<string, Flag[]>): string {
  switch (shell) {
    case "bash":
      return bash(flags);
    case "zsh":
      return zsh(flags);
    case "fish":
      return fish(flags);
    default:
      throw new UsageError(
        `completion needs a shell: bash, zsh or fish (got ${shell === undefined ? "none" : `"${shell}"`}), e.g. stylegram completion bash > ~/.local/share/bash-completion/completions/stylegram`,
      );
  }
}
