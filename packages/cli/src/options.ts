import type { Options } from "yargs";
import {
  CLUSTER_OPTIONS,
  flagName,
  flagOf,
  optionsOf,
  parseNumber,
  type ClusterOptionName,
  type Command,
  type OptionSpec,
  type ValuesFor,
} from "@ptcluster/protocol";
import { MACHINE_RULE } from "./util/machine.js";
import { asUsage, numberOption } from "./util/numbers.js";
import type { Grammar } from "./util/usage.js";

// The options of every command, as yargs tables. The cluster's options (those of `start`, and of
// `hub`, `engines`, `engine` where they share them) come from the one table in
// @ptcluster/protocol (CLUSTER_OPTIONS); each command adds the few that are its own. `unknownWord`
// suggests the closest flag of these tables when one is mistyped.

/** Help that lives next to the rule it states (the machine-size rule's numbers are in util/machine.ts). */
const MORE_HELP: Partial<Record<ClusterOptionName, string>> = { n: MACHINE_RULE };

/** The yargs option of an entry of the table, for one command. */
export function yargsOption(name: ClusterOptionName, command: Command): Options {
  const o: OptionSpec = CLUSTER_OPTIONS[name];
  const describe = [o.describeFor?.[command] ?? o.describe, MORE_HELP[name]].filter(Boolean).join(" ");
  const common: Options = { describe, ...(o.hidden ? { hidden: true } : {}), ...(o.alias ? { alias: o.alias } : {}) };
  switch (o.kind) {
    case "number":
      return { ...common, ...numberOption({ ...o, flag: flagOf(name), describe }) };
    case "string":
      return { ...common, type: "string", ...(o.default === undefined ? {} : { default: o.default }) };
    case "boolean":
      return { ...common, type: "boolean", ...(o.default === undefined ? {} : { default: o.default }) };
    case "choice":
      return { ...common, choices: o.choices, ...(o.default === undefined ? {} : { default: o.default }) };
    default:
      return o satisfies never;
  }
}

/** The yargs options of a command taken from the table, keyed by flag. */
export function clusterFlags(command: Command): Record<string, Options> {
  return Object.fromEntries(optionsOf(command).map((k) => [flagName(k), yargsOption(k, command)]));
}

/** The checked values of the table's options from what yargs parsed, by camelCase name. */
export function valuesOf<C extends Command>(
  command: C,
  argv: Record<string, unknown>,
): ValuesFor<typeof CLUSTER_OPTIONS, C> {
  return Object.fromEntries(optionsOf(command).map((k) => [k, argv[flagName(k)]])) as ValuesFor<
    typeof CLUSTER_OPTIONS,
    C
  >;
}

const json = { type: "boolean", default: false, describe: "print the result as one JSON line" } as const;

export const START = clusterFlags("start");

export const ENGINES = {
  ...clusterFlags("engines"),
  n: {
    demandOption: true,
    ...numberOption({
      flag: "-n",
      what: "a whole number of engines",
      min: 1,
      example: 2,
      describe: "number of engines to add",
    }),
  },
  timeout: numberOption({
    flag: "--timeout",
    what: "a whole number of ms",
    min: 1,
    default: 60_000,
    describe: "ms to wait for them to register",
  }),
  json,
} as const satisfies Record<string, Options>;

export const STOP = {
  ...clusterFlags("stop"),
  all: { type: "boolean", default: false, describe: "stop every cluster under $PTCLUSTER_DIR" },
  grace: numberOption({
    flag: "--grace",
    what: "a whole number of ms",
    min: 0,
    default: 1_000,
    describe: "ms to wait before SIGTERM, then SIGKILL",
  }),
} as const satisfies Record<string, Options>;

export const LIST = { json: { type: "boolean", default: false } } as const satisfies Record<string, Options>;

export const STATUS = {
  ...clusterFlags("status"),
  json: { type: "boolean", default: false },
} as const satisfies Record<string, Options>;

export const ABORT = {
  ...clusterFlags("abort"),
  engine: {
    type: "string",
    array: true,
    default: [],
    describe: "abort every task queued or running on engine ID (repeat for several)",
    // Each value checked as a whole engine id, quoting what was typed.
    coerce: (raw: unknown): number[] =>
      (Array.isArray(raw) ? raw : [raw]).map((v) =>
        asUsage(() => parseNumber({ flag: "--engine", what: "an engine id", min: 0, example: 3 }, v)),
      ),
  },
  all: { type: "boolean", default: false, describe: "abort every task of every client, queued or running" },
  json,
} as const satisfies Record<string, Options>;

export const HUB = clusterFlags("hub");

export const ENGINE = {
  ...clusterFlags("engine"),
  file: {
    type: "string",
    describe: "engine connection file (default: the profile's security/engine.json); - reads it from standard input",
  },
  url: { type: "string", describe: "controller engine endpoint, tcp://HOST:PORT (with --key)" },
  key: { type: "string", describe: "cluster key, 64 hex digits (with --url)" },
  id: numberOption({
    flag: "--id",
    what: "an engine id",
    min: 0,
    example: 3,
    describe: "ask for this engine id (honoured when free)",
  }),
  "id-base": numberOption({
    flag: "--id-base",
    what: "an engine id",
    min: 0,
    example: 8,
    describe: "under mpiexec, ask for id BASE + MPI rank (default 0: ids follow ranks)",
  }),
  "launch-tag": { type: "string", hidden: true },
  "exit-on-stdin-close": { type: "boolean", default: false, hidden: true },
  "orphan-timeout": numberOption({
    flag: "--orphan-timeout",
    what: "a whole number of ms",
    min: 1,
    default: 30_000,
    describe: "exit when the controller has been silent this many ms",
  }),
} as const satisfies Record<string, Options>;

export const REPL = clusterFlags("repl");

const TABLES: Record<string, Record<string, Options>> = {
  start: START,
  engines: ENGINES,
  stop: STOP,
  list: LIST,
  status: STATUS,
  abort: ABORT,
  hub: HUB,
  engine: ENGINE,
  repl: REPL,
};

/** Every command and the flags it takes, for suggestions on a typo. */
export const GRAMMAR: Grammar = {
  commands: Object.fromEntries(
    Object.entries(TABLES).map(([cmd, table]) => {
      const names = Object.entries(table).flatMap(([k, o]) => [k, ...(o.alias === undefined ? [] : [o.alias].flat())]);
      return [
        cmd,
        {
          long: names.filter((x) => x.length > 1),
          short: names.filter((x) => x.length === 1),
          booleans: Object.entries(table)
            .filter(([, o]) => o.type === "boolean")
            .map(([k]) => k),
          hidden: Object.entries(table)
            .filter(([, o]) => o.hidden)
            .map(([k]) => k),
        },
      ];
    }),
  ),
};

/**
 * The command line that gives a command these values (the inverse of {@link valuesOf}): how
 * `start` hands its checked options to the daemon it spawns. Every value is written, so the
 * daemon runs with exactly these whatever its environment (the default profile comes from
 * PTCLUSTER_PROFILE), except booleans at their default; `--flag=value`, so a value that starts
 * with a dash stays a value.
 */
export function argsOf(command: Command, values: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  for (const k of optionsOf(command)) {
    const v = values[k];
    const o: OptionSpec = CLUSTER_OPTIONS[k];
    if (v === undefined || (o.kind === "boolean" && v === o.default)) continue;
    const flag = flagOf(k);
    if (o.kind === "boolean") out.push(v ? flag : `--no-${flagName(k)}`);
    else if (flag.startsWith("--")) out.push(`${flag}=${String(v)}`);
    else out.push(flag, String(v));
  }
  return out;
}
