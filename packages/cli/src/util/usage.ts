import { InvalidOptionError } from "@ptcluster/protocol";

/**
 * A command line that cannot be run as typed: an unknown command or option, a value an option
 * cannot take. `ptcluster` prints its message on one line and exits with code 2 (as git and
 * npm do for usage errors), not the whole help.
 */
export class UsageError extends InvalidOptionError {}

/** Exit code of a usage error. */
export const USAGE_EXIT_CODE = 2;

/** Prints a usage error as one line, with where to read more, and sets exit code 2. */
export function reportUsage(command: string | undefined, message: string): void {
  const who = command ? `ptcluster ${command}` : "ptcluster";
  // One line, whatever the message: yargs spreads some (invalid choices) over several.
  const line = message
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .join(" ");
  process.stderr.write(`${who}: ${line}; see \`${who} --help\`\n`);
  process.exitCode = USAGE_EXIT_CODE;
}

/**
 * Edit distance with adjacent transpositions (optimal string alignment, as git uses for its
 * suggestions: `stauts` is one step from `status`), to suggest the flag or command a user meant.
 * A dozen lines do not justify a dependency.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

/**
 * The candidate closest to `word`, if it is close enough to be a typo of it (at most a third of
 * its letters wrong, and at least 2 allowed) or `word` is the start of exactly one of them.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const starts: string[] = [];
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
    if (word.length >= 3 && c.startsWith(word)) starts.push(c);
  }
  if (best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3))) return best;
  return starts.length === 1 ? starts[0] : undefined;
}

/** What `ptcluster` knows: its commands and, for each, the long and short option names it takes (without dashes). */
export interface Grammar {
  commands: Record<string, { long: string[]; short: string[]; booleans: string[]; hidden: string[] }>;
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * The first unknown command or option of `args` (the arguments after `ptcluster`), as a usage
 * error naming the closest known one; undefined when every word is known. Values of options are
 * not checked here (their own parsers do that).
 */
export function unknownWord(args: string[], g: Grammar): { command?: string; error: UsageError } | undefined {
  const at = args.findIndex((a) => !a.startsWith("-"));
  if (at < 0) return undefined; // no command: `--help`, `--version`, or nothing (yargs answers)
  const command = args[at] as string;
  const known = g.commands[command];
  if (!known) {
    const near = command === "help" ? "--help" : closest(command, Object.keys(g.commands));
    return { error: new UsageError(`unknown command ${command}${near ? ` (did you mean ${near}?)` : ""}`) };
  }
  const long = new Set([...known.long, "help", "version"]);
  for (const a of args.slice(at + 1)) {
    if (a === "--") break;
    if (/^-\d/.test(a) || a === "-") continue; // a negative number (a value, checked by its option) or stdin
    let flag: string;
    if (a.startsWith("--")) {
      const name = a.slice(2).split("=")[0] as string;
      const plain = kebab(name);
      if (
        long.has(plain) ||
        known.short.includes(plain) ||
        (plain.startsWith("no-") && known.booleans.includes(plain.slice(3)))
      )
        continue;
      flag = `--${name}`;
      const near = closest(
        plain,
        [...long].filter((x) => !known.hidden.includes(x)),
      );
      return { command, error: new UsageError(`unknown option ${flag}${near ? ` (did you mean --${near}?)` : ""}`) };
    } else if (a.startsWith("-")) {
      const letter = a[1] as string;
      if (known.short.includes(letter)) continue;
      flag = a.split("=")[0] as string;
      // `-concurency`: a long option typed with one dash.
      const near =
        a.length > 2
          ? closest(
              a.slice(1).split("=")[0] as string,
              [...long].filter((x) => !known.hidden.includes(x)),
            )
          : undefined;
      return { command, error: new UsageError(`unknown option ${flag}${near ? ` (did you mean --${near}?)` : ""}`) };
    }
  }
  return undefined;
}
