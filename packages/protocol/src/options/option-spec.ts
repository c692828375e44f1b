import { InvalidOptionError } from "../errors.js";

// What an option of the cluster is (its kind, range, default, help, the commands that take it),
// and how a value for it is checked. Library-neutral: the command line derives its yargs flags
// from these, `startCluster()` its options type and checks.

/** The `ptcluster` commands that take options of the table. */
export type Command = "start" | "hub" | "engines" | "engine" | "stop" | "status" | "repl" | "abort";

/** What a numeric option takes: whole numbers (or decimals) within a range. */
export interface NumberSpec {
  /** what it takes, for messages: "a whole number of engines", "a port number" */
  what: string;
  min: number;
  max?: number;
  /** decimals allowed (default: whole numbers only) */
  decimal?: boolean;
  /** `min` itself is not allowed */
  above?: boolean;
  /** a value to show in "needs a value, as …" */
  example?: number;
}

interface Common {
  /** one line for `--help` */
  describe: string;
  /** `--help` text of one command, where it reads better said differently */
  describeFor?: Partial<Record<Command, string>>;
  /** the commands that take it */
  commands: readonly Command[];
  /** `startCluster()` takes it, under the same (camelCase) name */
  api?: boolean;
  /** internal (the daemon hand-off): not in `--help` nor suggestions */
  hidden?: boolean;
  /** another long name (kebab-case) */
  alias?: string;
}

export interface NumberOption extends Common, NumberSpec {
  kind: "number";
  default?: number;
}
export interface StringOption extends Common {
  kind: "string";
  default?: string;
}
export interface BooleanOption extends Common {
  kind: "boolean";
  default?: boolean;
}
export interface ChoiceOption<C extends string = string> extends Common {
  kind: "choice";
  choices: readonly C[];
  default?: C;
}
export type OptionSpec = NumberOption | StringOption | BooleanOption | ChoiceOption;

/** The value an option takes once checked. */
export type ValueOf<O> = O extends { kind: "number" }
  ? number
  : O extends { kind: "string" }
    ? string
    : O extends { kind: "boolean" }
      ? boolean
      : O extends { kind: "choice"; choices: readonly (infer C)[] }
        ? C
        : never;

/** The checked values of a command's options, by camelCase name: those with a default are always there. */
export type ValuesFor<T extends Record<string, OptionSpec>, C extends Command> = {
  -readonly [K in keyof T as C extends T[K]["commands"][number] ? K : never]: T[K] extends { default: unknown }
    ? ValueOf<T[K]>
    : ValueOf<T[K]> | undefined;
};

/** The options `startCluster()` takes (those marked `api`), all optional. */
export type ApiOptionsOf<T extends Record<string, OptionSpec>> = {
  -readonly [K in keyof T as T[K] extends { api: true } ? K : never]?: ValueOf<T[K]>;
};

/** The flag of an option as typed, without dashes: its name in kebab-case (`clusterId` → `cluster-id`). */
export function flagName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The flag of an option as typed: `-n`, `--cluster-id`. */
export function flagOf(name: string): string {
  const f = flagName(name);
  return f.length === 1 ? `-${f}` : `--${f}`;
}

/** A value as messages quote it: `` `abc` (string) ``. */
export function describeValue(v: unknown): string {
  const text =
    typeof v === "string"
      ? v
      : (() => {
          try {
            return JSON.stringify(v) ?? String(v);
          } catch {
            return String(v);
          }
        })();
  return `\`${text}\` (${v === null ? "null" : Array.isArray(v) ? "array" : typeof v})`;
}

/** "0 or more", "1 to 65535", "above 0 and at most 4096". */
function rangeOf(spec: NumberSpec): string {
  if (spec.above) return `above ${spec.min}${spec.max === undefined ? "" : ` and at most ${spec.max}`}`;
  return spec.max === undefined ? `${spec.min} or more` : `${spec.min} to ${spec.max}`;
}

function inRange(spec: NumberSpec, n: number): boolean {
  if (!Number.isFinite(n) || n < spec.min || (spec.above && n === spec.min)) return false;
  if (spec.max !== undefined && n > spec.max) return false;
  return spec.decimal === true || Number.isInteger(n);
}

/**
 * Parses a numeric option as the user typed it on the command line (`flag`: `-n`, `--timeout`).
 * Options stay text until this reads them (not yargs' `type: "number"`, which turns `abc` into
 * NaN and a bare `-n` into nothing), so the message quotes what was received.
 */
export function parseNumber(spec: NumberSpec & { flag: string }, raw: unknown): number {
  const range = rangeOf(spec);
  if (Array.isArray(raw))
    throw new InvalidOptionError(`${spec.flag} was given ${raw.length} times (${raw.join(", ")}); give it once`);
  if (raw === true || raw === "" || raw === undefined) {
    throw new InvalidOptionError(
      `${spec.flag} needs a value: ${spec.what}, ${range}, as ${spec.flag} ${spec.example ?? Math.max(spec.min, 1)}`,
    );
  }
  const text = String(raw).trim();
  const ok = spec.decimal ? /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(text) : /^[+-]?\d+$/.test(text);
  const n = Number(text);
  if (!ok || !inRange(spec, n))
    throw new InvalidOptionError(`${spec.flag} takes ${spec.what}, ${range}; got ${JSON.stringify(String(raw))}`);
  return n;
}

/**
 * Checks a value given to the API (`startCluster({ concurrency: 0 })`) against its option:
 * ``Expected `concurrency` to be a whole number of tasks, 1 or more, got `0` (number)``.
 */
export function checkValue<O extends OptionSpec>(name: string, o: O, v: unknown): ValueOf<O> {
  const expected = (what: string) =>
    new InvalidOptionError(`Expected \`${name}\` to be ${what}, got ${describeValue(v)}`);
  switch (o.kind) {
    case "number":
      if (typeof v !== "number" || !inRange(o, v)) throw expected(`${o.what}, ${rangeOf(o)}`);
      break;
    case "string":
      if (typeof v !== "string") throw expected("a string");
      break;
    case "boolean":
      if (typeof v !== "boolean") throw expected("a boolean");
      break;
    case "choice":
      if (typeof v !== "string" || !o.choices.includes(v)) throw expected(`one of ${o.choices.join(", ")}`);
      break;
    default:
      o satisfies never;
  }
  return v as ValueOf<O>;
}
