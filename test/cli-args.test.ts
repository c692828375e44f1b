import { afterAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { accessSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ClusterStartError, connect, startCluster } from "@ptcluster/client";
import { BIN, ptcluster } from "./helpers/cluster.js";
import { processesUsing, running } from "./helpers/wait.js";

// The command line's set-up and argument handling, as a new user meets them: the bin npm links,
// --version, and one clear line (exit code 2) for every command line that cannot run as typed.

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI_PKG = JSON.parse(readFileSync(join(ROOT, "packages/cli/package.json"), "utf8")) as {
  version: string;
  bin: Record<string, string>;
};
const SLOW_ENGINES = fileURLToPath(new URL("./fixtures/slow-engines.mjs", import.meta.url));

interface StartJson {
  ids: number[];
  controllerPid: number;
  enginePids: number[];
}

describe("ptcluster command line: set-up and arguments", () => {
  const dirs: string[] = [];
  /** A PTCLUSTER_DIR of its own, so every process under it can be found (and must be gone at the end). */
  function freshDir(): string {
    const d = mkdtempSync(join(tmpdir(), "ptc-args-"));
    dirs.push(d);
    return d;
  }

  afterAll(async () => {
    const left: string[] = [];
    for (const d of dirs) {
      if (processesUsing(d).length) await ptcluster(d, ["stop", "--all"]);
      for (const p of processesUsing(d)) {
        left.push(`${p.pid} ${p.cmdline}`);
        process.kill(p.pid, "SIGKILL");
      }
      rmSync(d, { recursive: true, force: true });
    }
    if (left.length) throw new Error(`processes left behind: ${left.join("; ")}`);
  });

  /** Asserts a usage error: exit code 2, nothing on stdout, one line on stderr (not the help), no process started. */
  function expectUsageError(
    r: { exitCode?: number | undefined; stdout: string; stderr: string },
    dir: string,
    line: RegExp | string,
  ) {
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trim().split("\n");
    expect(lines, r.stderr).toHaveLength(1);
    if (typeof line === "string") expect(lines[0]).toBe(line);
    else expect(lines[0]).toMatch(line);
    expect(processesUsing(dir)).toEqual([]);
    expect(existsSync(join(dir, "profile_default", "run", "cluster.json"))).toBe(false);
  }

  it("the bin npm links is a committed launcher, there before dist/ is built (so one `npm ci` links it)", async () => {
    const target = CLI_PKG.bin["ptcluster"] as string;
    // npm links bins before `prepare` builds dist/; a bin inside dist/ is not linked on a fresh clone.
    expect(target).not.toMatch(/(^|\/)dist\//);
    const file = join(ROOT, "packages/cli", target);
    const tracked = await execa("git", ["ls-files", "--error-unmatch", file], { cwd: ROOT, reject: false });
    expect(tracked.exitCode, `${target} is committed`).toBe(0);
    accessSync(file, constants.X_OK);
    expect(readFileSync(file, "utf8")).toMatch(/^#!\/usr\/bin\/env node\n/);
    // Through the launcher, the built command runs.
    const v = await execa(file, ["--version"], { reject: false });
    expect(v.stdout.trim()).toBe(CLI_PKG.version);
    // Without dist/ (a clone whose build has not run yet), it says what to do, in one line.
    const bare = mkdtempSync(join(tmpdir(), "ptc-nodist-"));
    try {
      mkdirSync(join(bare, "packages/cli/bin"), { recursive: true });
      cpSync(file, join(bare, "packages/cli", target));
      const r = await execa(process.execPath, [join(bare, "packages/cli", target), "--version"], { reject: false });
      expect(r.exitCode).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/not built yet .*Run `npm run build`/);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });

  it("--version prints the package version, at the top and after any command", async () => {
    const dir = freshDir();
    const results = await Promise.all(
      [[], ["start"], ["status"], ["engine"]].map((cmd) => ptcluster(dir, [...cmd, "--version"])),
    );
    for (const r of results) {
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(CLI_PKG.version);
    }
    expect(processesUsing(dir)).toEqual([]);
  });

  it("`start -n` refuses what is not a count, or a count far beyond the machine: one line with the value received, exit 2, no process", async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ["-n", "abc"],
        /^ptcluster start: -n takes a whole number of engines, 0 or more; got "abc"; see `ptcluster start --help`$/,
      ],
      [["-n"], /^ptcluster start: -n needs a value: a whole number of engines, 0 or more, as -n 4;/],
      [["-n", "--json"], /^ptcluster start: -n needs a value/],
      [["-n", "-1"], /^ptcluster start: -n takes a whole number of engines, 0 or more; got "-1";/],
      [["-n", "2.5"], /got "2\.5"/],
      [["-n", "2", "-n", "3"], /^ptcluster start: -n was given 2 times \(2, 3\); give it once;/],
      [
        ["-n", "100000"],
        /^ptcluster start: -n 100000 is more engines than this machine runs well: at most \d+ local engines \((4 per core|one per 100 MB)[^)]*\); use a smaller -n, or --force;/,
      ],
    ];
    const dirs = cases.map(() => freshDir());
    const results = await Promise.all(cases.map(([args], i) => ptcluster(dirs[i]!, ["start", ...args])));
    results.forEach((r, i) => expectUsageError(r, dirs[i]!, cases[i]![1]));
  });

  it("the machine-size rule counts the cores this process may use; --force lets a count beyond it through, and --help says the rule", async () => {
    // Pinned to one core, the rule allows 4 local engines: 5 is refused, 5 with --force starts.
    const dir = freshDir();
    const pinned = (args: string[]) =>
      execa("taskset", ["-c", "0", process.execPath, BIN, ...args], {
        env: { PTCLUSTER_DIR: dir },
        reject: false,
        timeout: 60_000,
      });
    const refused = await pinned(["start", "-n", "5"]);
    expectUsageError(
      refused,
      dir,
      /^ptcluster start: -n 5 is more engines than this machine runs well: at most 4 local engines \(4 per core, 1 core\); use a smaller -n, or --force;/,
    );

    const forced = await pinned(["start", "-n", "5", "--force", "--json", "--no-restart"]);
    expect(forced.exitCode, forced.stderr).toBe(0);
    const s = JSON.parse(forced.stdout) as StartJson;
    expect(s.ids).toEqual([0, 1, 2, 3, 4]);
    const pids = [s.controllerPid, ...s.enginePids];
    expect(running(pids)).toEqual(pids);
    const stop = await ptcluster(dir, ["stop"]);
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(running(pids)).toEqual([]);

    const help = await ptcluster(dir, ["start", "--help"]);
    expect(help.stdout.replace(/\s+/g, " ")).toContain(
      "Local engines are limited to 4 per core and one per 100 MB of memory unless --force",
    );
  });

  it("--timeout with no engine registered: `start` says 0 of N, exits 1, and has stopped every process it started when it returns", async () => {
    const dir = freshDir();
    const r = await ptcluster(dir, ["start", "-n", "3", "--timeout", "1"]);
    // Checked at once, not polled: nothing may be left starting once `start` has answered.
    const left = processesUsing(dir);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toEqual([
      "ptcluster start: Only 0 of 3 engines registered within 1 ms; the 3 still starting were stopped, and the controller.",
    ]);
    expect(left).toEqual([]);
  });

  it("--timeout with some engines registered: `start` says how many, stops those still starting, and the cluster keeps running with the rest", async () => {
    const dir = freshDir();
    // Engines after the first stay "starting" for a minute (the fixture, preloaded through
    // NODE_OPTIONS into every process of the cluster, holds them before they register).
    const env = { NODE_OPTIONS: `--import ${SLOW_ENGINES}`, PTC_TEST_PROMPT_ENGINES: "1" };
    const r = await ptcluster(dir, ["start", "-n", "3", "--timeout", "7000", "--json", "--no-restart"], { env });
    const left = processesUsing(dir);
    expect(r.exitCode, r.stderr).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      "ptcluster start: Only 1 of 3 engines registered within 7000 ms; the 2 still starting were stopped. The cluster keeps running with 1 engine: " +
        "use it, add engines with `ptcluster engines -n K`, or stop it with `ptcluster stop`.",
    );
    const s = JSON.parse(r.stdout) as StartJson;
    expect(s.ids).toEqual([0]);
    // Exactly the controller and the one registered engine are left: the two still starting are gone.
    expect(left.map((p) => p.pid).sort()).toEqual([s.controllerPid, ...s.enginePids].sort());
    expect(s.enginePids).toHaveLength(1);

    const rc = await connect({ file: join(dir, "profile_default", "security", "client.json") });
    try {
      expect(rc.ids).toEqual([0]);
      expect(await rc.view().applySync(() => "works")).toEqual(["works"]);
    } finally {
      await rc.close();
    }
    const stop = await ptcluster(dir, ["stop"]);
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(processesUsing(dir)).toEqual([]);
  });

  it("startCluster() whose timeout passes with some engines registered rejects and stops that cluster (the caller has no handle on it)", async () => {
    const dir = freshDir();
    const saved = {
      dir: process.env["PTCLUSTER_DIR"],
      opts: process.env["NODE_OPTIONS"],
      prompt: process.env["PTC_TEST_PROMPT_ENGINES"],
    };
    Object.assign(process.env, {
      PTCLUSTER_DIR: dir,
      NODE_OPTIONS: `--import ${SLOW_ENGINES}`,
      PTC_TEST_PROMPT_ENGINES: "1",
    });
    let err: unknown;
    try {
      await startCluster({ n: 2, timeout: 7000, clusterId: "short" }).catch((e: unknown) => (err = e));
    } finally {
      for (const [k, v] of [
        ["PTCLUSTER_DIR", saved.dir],
        ["NODE_OPTIONS", saved.opts],
        ["PTC_TEST_PROMPT_ENGINES", saved.prompt],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(err).toBeInstanceOf(ClusterStartError);
    expect((err as Error).message).toMatch(/Only 1 of 2 engines registered within 7000 ms/);
    expect(processesUsing(dir)).toEqual([]);
  });

  it("a mistyped flag or command gets one line naming the closest one (not the help), exit 2", async () => {
    const cases: Array<[string[], string]> = [
      [
        ["start", "--concurency", "4"],
        "ptcluster start: unknown option --concurency (did you mean --concurrency?); see `ptcluster start --help`",
      ],
      [
        ["start", "-n", "2", "--fourground"],
        "ptcluster start: unknown option --fourground (did you mean --foreground?); see `ptcluster start --help`",
      ],
      [["strat", "-n", "2"], "ptcluster: unknown command strat (did you mean start?); see `ptcluster --help`"],
      [["stauts"], "ptcluster: unknown command stauts (did you mean status?); see `ptcluster --help`"],
      [
        ["status", "--jsno"],
        "ptcluster status: unknown option --jsno (did you mean --json?); see `ptcluster status --help`",
      ],
      [["stop", "--xyzzy"], "ptcluster stop: unknown option --xyzzy; see `ptcluster stop --help`"],
    ];
    const dirs = cases.map(() => freshDir());
    const results = await Promise.all(cases.map(([args], i) => ptcluster(dirs[i]!, args)));
    results.forEach((r, i) => expectUsageError(r, dirs[i]!, cases[i]![1]));
  });

  it("the numeric options of start, engines, stop, hub and engine are checked the same way; a bad choice is one line too", async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ["start", "--concurrency", "abc"],
        /^ptcluster start: --concurrency takes a whole number of tasks, 1 or more; got "abc";/,
      ],
      [["start", "--timeout", "0"], /^ptcluster start: --timeout takes a whole number of ms, 1 or more; got "0";/],
      [
        ["start", "--engine-port", "70000"],
        /^ptcluster start: --engine-port takes a port number, 0 to 65535; got "70000";/,
      ],
      [["engines", "-n", "0"], /^ptcluster engines: -n takes a whole number of engines, 1 or more; got "0";/],
      [["stop", "--grace", "soon"], /^ptcluster stop: --grace takes a whole number of ms, 0 or more; got "soon";/],
      [["hub", "--heartbeat", "-5"], /^ptcluster hub: --heartbeat takes a whole number of ms, 10 or more; got "-5";/],
      [
        ["start", "--scheme", "fast"],
        /^ptcluster start: Invalid values: Argument: scheme, Given: "fast", Choices: "leastload", "lru", "random", "weighted"; see/,
      ],
      [
        ["engine", "--id", "x", "--url", "tcp://127.0.0.1:1", "--key", "0".repeat(64)],
        /^ptcluster engine: --id takes an engine id, 0 or more; got "x";/,
      ],
    ];
    const dirs = cases.map(() => freshDir());
    const results = await Promise.all(cases.map(([args], i) => ptcluster(dirs[i]!, args, { timeout: 15_000 })));
    results.forEach((r, i) => expectUsageError(r, dirs[i]!, cases[i]![1]));
  });
});
