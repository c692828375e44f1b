import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import yargs from "yargs";
import {
  API_OPTIONS,
  CLUSTER_OPTIONS,
  InvalidOptionError,
  checkValue,
  flagName,
  flagOf,
  optionsOf,
  parseNumber,
  profilePaths,
  startValuesFrom,
  type ClusterOptionName,
  type OptionSpec,
  type StartValues,
} from "@ptcluster/protocol";
import { hubOptions } from "../src/controller/hub-options.js";
import { argsOf, HUB, START, valuesOf } from "../src/options.js";
import { UsageError } from "../src/util/usage.js";

// The one table of the cluster's options and what is derived from it: flags, help, checks, the
// options of startCluster() and the controller's options. Pure, apart from one `--help` run.

const BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url));
const NAMES = Object.keys(CLUSTER_OPTIONS) as ClusterOptionName[];
const spec = (k: ClusterOptionName): OptionSpec => CLUSTER_OPTIONS[k];

/** Parses a command line with the options yargs gets for a command, as bin.ts does. */
async function parse(options: typeof START, args: string[]): Promise<Record<string, unknown>> {
  return (await yargs(args)
    .options(options)
    .parserConfiguration({ "parse-numbers": false })
    .strict()
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync()) as Record<string, unknown>;
}

/** A value of each option unlike its default, within its range. */
function sample(k: ClusterOptionName): unknown {
  const o = spec(k);
  switch (o.kind) {
    case "number":
      return o.decimal ? o.min + 1.5 : o.max !== undefined ? o.max : o.min + 7;
    case "string":
      return `-${k} value`; // a leading dash must stay a value
    case "boolean":
      return !(o.default ?? false);
    case "choice":
      return o.choices.find((c) => c !== o.default);
  }
}

describe("the options table", () => {
  it("names each option in camelCase and its flag in kebab-case, with a one-line description unless hidden", () => {
    for (const k of NAMES) {
      expect(k, k).toMatch(/^[a-z][a-zA-Z]*$/);
      expect(flagOf(k)).toBe(k.length === 1 ? `-${k}` : `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
      if (!spec(k).hidden) expect(spec(k).describe, k).toMatch(/^\S.*\S$/);
      expect(spec(k).commands.length, k).toBeGreaterThan(0);
    }
  });

  it("every visible flag of `start` and `hub` appears in its --help, with its default", async () => {
    for (const [command, table] of [
      ["start", START],
      ["hub", HUB],
    ] as const) {
      const { stdout, exitCode } = await execa(process.execPath, [BIN, command, "--help"], { reject: false });
      expect(exitCode).toBe(0);
      const help = stdout.replace(/\s+/g, " ");
      for (const k of optionsOf(command)) {
        const o = spec(k);
        if (o.hidden) {
          expect(help, `${command} --help hides ${flagOf(k)}`).not.toContain(flagOf(k));
          continue;
        }
        expect(help, `${command} --help lists ${flagOf(k)}`).toMatch(new RegExp(`(^|[\\s,])${flagOf(k)}\\b`));
        expect(help).toContain((o.describeFor?.[command] ?? o.describe).replace(/\s+/g, " "));
        if (o.default !== undefined && o.default !== "" && o.kind !== "boolean")
          expect(help, `${flagOf(k)}'s default`).toContain(`[default: ${JSON.stringify(o.default)}]`);
      }
      expect(Object.keys(table).sort()).toEqual(optionsOf(command).map(flagName).sort());
    }
  });

  it("every option startCluster() takes is a flag of `start`, of the same type and default", async () => {
    expect(API_OPTIONS).toEqual(
      expect.arrayContaining(["n", "profile", "clusterId", "concurrency", "timeout", "scheme", "restart"]),
    );
    for (const k of API_OPTIONS) {
      expect(spec(k).commands, k).toContain("start");
      expect(START[flagName(k)], k).toBeDefined();
      // The flag, given the same value, gives what the option gives.
      const v = sample(k);
      const parsed = valuesOf("start", await parse(START, argsOf("start", { [k]: v })));
      expect(parsed[k as keyof StartValues], k).toEqual(startValuesFrom({ [k]: v })[k as keyof StartValues]);
    }
    const none = startValuesFrom({});
    const flags = valuesOf("start", await parse(START, []));
    expect(none).toEqual(flags);
  });

  it("startCluster() refuses an option it does not take, naming the ones it does", () => {
    expect(() => startValuesFrom({ foreground: true })).toThrow(InvalidOptionError);
    expect(() => startValuesFrom({ foreground: true })).toThrow(
      `Unknown startCluster option \`foreground\`. Known options: ${API_OPTIONS.join(", ")}.`,
    );
    expect(() => startValuesFrom(null as unknown as object)).toThrow(
      "Expected startCluster options to be an object, got `null` (null)",
    );
  });

  it("validation messages name the option and quote the value, on the command line and in the API", async () => {
    for (const k of NAMES) {
      const o = spec(k);
      if (o.kind !== "number") continue;
      const bad = o.max !== undefined ? o.max + 1 : o.min - 1;
      expect(() => parseNumber({ ...o, flag: flagOf(k) }, "abc"), k).toThrow(`${flagOf(k)} takes ${o.what}`);
      expect(() => parseNumber({ ...o, flag: flagOf(k) }, "abc"), k).toThrow(/; got "abc"$/);
      expect(() => parseNumber({ ...o, flag: flagOf(k) }, String(bad)), k).toThrow(`got "${bad}"`);
      expect(() => checkValue(k, o, bad), k).toThrow(
        new RegExp(`^Expected \`${k}\` to be ${o.what}, .* got \`${bad}\` \\(number\\)$`),
      );
      expect(() => checkValue(k, o, "3"), k).toThrow("got `3` (string)");
      if (!o.decimal) expect(() => checkValue(k, o, o.min + 0.5), k).toThrow(`got \`${o.min + 0.5}\` (number)`);
    }
    expect(() => checkValue("scheme", CLUSTER_OPTIONS.scheme, "fastest")).toThrow(
      "Expected `scheme` to be one of leastload, lru, random, weighted, got `fastest` (string)",
    );
    expect(() => checkValue("restart", CLUSTER_OPTIONS.restart, "no")).toThrow(
      "Expected `restart` to be a boolean, got `no` (string)",
    );
    expect(() => startValuesFrom({ concurrency: 0 })).toThrow(
      "Expected `concurrency` to be a whole number of tasks, 1 or more, got `0` (number)",
    );
    // On the command line, a refused value is a usage error (one line, exit code 2).
    const err = await parse(START, ["--heartbeat", "5"]).catch((e: unknown) => e);
    expect(String((err as Error).message)).toBe('--heartbeat takes a whole number of ms, 10 or more; got "5"');
    const coerce = (START["heartbeat"] as { coerce: (raw: unknown) => number }).coerce;
    expect(() => coerce("5")).toThrow(UsageError);
  });

  it("the daemon's command line gives back the values `start` checked (argsOf inverts valuesOf)", async () => {
    const values = Object.fromEntries(optionsOf("start").map((k) => [k, sample(k)])) as StartValues;
    const args = argsOf("start", values);
    expect(args).toContain("--ssh-options=-sshOptions value");
    expect(args).toContain("--no-restart");
    expect(valuesOf("start", await parse(START, args))).toEqual(values);
    // Every value but a boolean at its default is written: the daemon's environment cannot change them.
    const defaults = startValuesFrom({});
    expect(argsOf("start", defaults)).toEqual(
      expect.arrayContaining([`--profile=${defaults.profile}`, "--cluster-id=", "--timeout=30000"]),
    );
    expect(
      argsOf("start", defaults).filter((a) => /^--(no-)?(force|restart|curve|json|foreground|ipc-ready)\b/.test(a)),
    ).toEqual([]);
    expect(valuesOf("start", await parse(START, argsOf("start", defaults)))).toEqual(defaults);
  });

  it("the controller's options are filled from the values in one place, in its units", () => {
    const v = {
      ...startValuesFrom({ maxMessageMb: 1.5 }),
      heartbeat: 250,
      clientTimeout: 2_000,
      resultTtl: 0,
      enginePort: 47011,
      location: "gw",
    };
    const logger = {} as Parameters<typeof hubOptions>[2]["logger"];
    const h = hubOptions(v, profilePaths(v.profile, v.clusterId), { logger });
    expect(h).toMatchObject({
      profile: v.profile,
      clusterId: "",
      ip: "127.0.0.1",
      location: "gw",
      ports: { engine: 47011, client: 0, notify: 0 },
      heartbeatMs: 250,
      scheme: "leastload",
      maxMessageBytes: 1.5 * 2 ** 20,
      clientTimeoutMs: 2_000,
      resultTtlMs: 0,
      logger,
    });
    expect(h.key).toHaveLength(32);
    expect(h.curve).toBeUndefined();
  });
});
