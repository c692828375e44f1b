import { afterAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClusterStatus } from "@ptcluster/client";
import { BIN, ptcluster, startTestCluster, useCluster } from "./helpers/cluster.js";
import { waitExited, waitFor } from "./helpers/wait.js";

/**
 * Runs on an engine until `marker` exists (or 20 s pass): a task that is busy for as long as the
 * test needs, pausing 5 ms per turn so it does not burn a shared core.
 */
function spinUntil(marker: string): string {
  const fs = require("node:fs") as typeof import("node:fs");
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + 20_000;
  while (!fs.existsSync(marker) && Date.now() < end) Atomics.wait(pause, 0, 0, 5);
  return "done";
}

/** `12:04:05.123 INFO  …`: a readable log line. */
const READABLE = /^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /;

describe("what a busy engine runs (rc.status, ptcluster status)", () => {
  const ctx = useCluster({ n: 1 });

  it("shows the running task's function name and a growing duration, and the task queued behind it", async () => {
    const marker = join(ctx.dir, "spin-done");
    const v = ctx.rc.view([ctx.rc.ids[0]!]);
    const busy = v.apply(spinUntil, marker);
    const behind = v.apply(function queuedBehind() {
      return 1;
    });
    const engineOf = (s: ClusterStatus) => s.engines.find((e) => e.id === ctx.rc.ids[0]);
    const first = await waitFor(
      async () => {
        const s = await ctx.rc.status();
        const e = engineOf(s);
        return e?.current.length === 1 && e.queued === 1 ? s : undefined;
      },
      { what: "status to show spinUntil running and one task queued" },
    );
    const e1 = engineOf(first)!;
    expect(e1.current[0]).toMatchObject({ fn: "spinUntil", op: "apply", taskId: busy.msgIds[0] });
    const since = e1.current[0]!.since;
    expect(since).toBeLessThanOrEqual(first.time);

    // The text form: a RUNNING cell `spinUntil (N.Ns)` and QUEUED 1, the duration growing between calls.
    const row = async () => {
      const r = await ptcluster(ctx.dir, ["status"]);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toContain(
        `Logs: ${join(ctx.dir, "profile_default", "log")} (controller: ${join(ctx.dir, "profile_default", "log", "hub.log")})`,
      );
      const line = r.stdout.split("\n").find((l) => l.startsWith(`${ctx.rc.ids[0]} `));
      const m = /\bbusy\s+spinUntil \((\d+\.\d)s\)\s+1\s+\d+\s+1$/.exec(line ?? "");
      expect(m, r.stdout).not.toBeNull();
      return Number(m![1]);
    };
    const d1 = await row();
    await waitFor(async () => (await row()) > d1, { what: "the duration shown to grow" });
    const later = await ctx.rc.status();
    expect(engineOf(later)!.current[0]!.since).toBe(since);
    expect(later.time - since).toBeGreaterThan(first.time - since);

    // The JSON form carries the same fields.
    const json = JSON.parse((await ptcluster(ctx.dir, ["status", "--json"])).stdout) as ClusterStatus;
    expect(engineOf(json)).toMatchObject({
      queued: 1,
      current: [{ fn: "spinUntil", op: "apply", since, taskId: busy.msgIds[0] }],
    });
    expect(json.log).toEqual({
      dir: join(ctx.dir, "profile_default", "log"),
      file: join(ctx.dir, "profile_default", "log", "hub.log"),
    });

    writeFileSync(marker, "");
    expect(await busy).toEqual(["done"]);
    expect(await behind).toEqual([1]);
    await waitFor(
      async () => {
        const e = engineOf(await ctx.rc.status());
        return e?.current.length === 0 && e.queued === 0;
      },
      { what: "status to show the engine idle again" },
    );
  });

  it("names load-balanced map chunks and anonymous functions; tasks waiting in the controller count as unassigned", async () => {
    const marker = join(ctx.dir, "spin-done-2");
    const marker3 = join(ctx.dir, "spin-done-3");
    const lb = ctx.rc.loadBalancedView();
    const spinning = lb.map(spinUntil, [marker]);
    const first = await waitFor(async () => (await ctx.rc.status()).engines[0]?.current[0], {
      what: "the map chunk running",
    });
    expect(first).toMatchObject({
      fn: "spinUntil",
      op: "map",
      taskId: expect.stringMatching(new RegExp(`^${ctx.rc.id}:\\d+$`)),
    });
    // Written inline, as an argument: a function without a name.
    const anonymous = lb.apply((m: string) => {
      const fs = require("node:fs") as typeof import("node:fs");
      const pause = new Int32Array(new SharedArrayBuffer(4));
      const end = Date.now() + 20_000;
      while (!fs.existsSync(m) && Date.now() < end) Atomics.wait(pause, 0, 0, 5);
      return "anonymous done";
    }, marker3);
    await waitFor(
      async () => {
        const s = await ctx.rc.status();
        return s.engines[0]?.queued === 1 || s.unassigned === 1;
      },
      { what: "the anonymous task waiting behind the map chunk" },
    );
    writeFileSync(marker, "");
    expect(await spinning).toEqual(["done"]);
    const shown = await waitFor(async () => (await ctx.rc.status()).engines[0]?.current[0], {
      what: "the anonymous task running",
    });
    expect(shown).toMatchObject({ fn: "anonymous", op: "apply", taskId: anonymous.msgIds[0] });
    writeFileSync(marker3, "");
    expect(await anonymous).toBe("anonymous done");
  });
});

describe("logs", () => {
  // Not `tempClusterDir()`: it would set PTCLUSTER_DIR for the whole file, under the other describe's cluster.
  const tmp = { dir: mkdtempSync(join(tmpdir(), "ptc-ops-")) };
  const run = (file: string, args: string[]) =>
    execa(file, args, {
      env: { PTCLUSTER_DIR: tmp.dir, NO_COLOR: "1" },
      reject: false,
      stdin: "ignore",
      timeout: 30_000,
    });
  const children: Array<ReturnType<typeof run>> = [];
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    rmSync(tmp.dir, { recursive: true, force: true });
  });

  it("`ptcluster engine` prints readable lines to a terminal and pino JSON when piped", async () => {
    const cluster = await startTestCluster(tmp.dir, { n: 0, profile: "fg" });
    try {
      const tty = run("script", ["-qfc", `${process.execPath} ${BIN} engine --profile fg`, "/dev/null"]);
      const piped = run(process.execPath, [BIN, "engine", "--profile", "fg"]);
      children.push(tty, piped);
      let ttyOut = "";
      let pipedErr = "";
      tty.stdout?.on("data", (d: Buffer) => (ttyOut += d.toString()));
      piped.stderr?.on("data", (d: Buffer) => (pipedErr += d.toString()));
      await waitFor(() => ttyOut.includes("engine registered") && pipedErr.includes("engine registered"), {
        what: "both engines to log their registration",
      });
    } finally {
      await cluster.stop();
    }
    const pipedPid = children[1]!.pid;
    const [t, p] = await Promise.all(children.slice(-2));
    const ttyLines = String(t!.stdout).split(/\r?\n/).filter(Boolean);
    expect(ttyLines.length).toBeGreaterThanOrEqual(2);
    for (const line of ttyLines) {
      expect(line).not.toMatch(/^\{/);
      expect(line).toMatch(READABLE);
    }
    expect(ttyLines.some((l) => /INFO {2}engine\[\d+\] engine registered$/.test(l))).toBe(true);
    const jsonLines = String(p!.stderr).split("\n").filter(Boolean);
    expect(jsonLines.length).toBeGreaterThanOrEqual(2);
    for (const line of jsonLines)
      expect(JSON.parse(line)).toMatchObject({ level: expect.any(Number), msg: expect.any(String), pid: pipedPid });
    expect(await waitExited([children[0]!.pid!, pipedPid!], 5_000)).toEqual([]);
  });

  it("`ptcluster hub` in the foreground shows its log as readable lines on a terminal, and keeps JSON in its file", async () => {
    const hub = run("script", ["-qfc", `${process.execPath} ${BIN} hub --profile hubfg`, "/dev/null"]);
    children.push(hub);
    let out = "";
    hub.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes("controller running") && out.includes("Log: "), {
      what: "the controller's first log line",
    });
    expect((await ptcluster(tmp.dir, ["stop", "--profile", "hubfg"])).exitCode).toBe(0);
    const r = await hub;
    const lines = String(r.stdout).split(/\r?\n/).filter(Boolean);
    const logLines = lines.filter((l) => !/^(Controller running|Engine file|Ports|Log):? /.test(l));
    expect(logLines.length).toBeGreaterThanOrEqual(2);
    for (const line of logLines) expect(line).toMatch(READABLE);
    expect(logLines.some((l) => / hub controller running ports=/.test(l))).toBe(true);
    const logFile = join(tmp.dir, "profile_hubfg", "log", "hub.log");
    expect(lines).toContain(`Log: ${logFile}`);
    const json = readFileSync(logFile, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { msg: string });
    expect(json.map((j) => j.msg)).toEqual(expect.arrayContaining(["controller running", "controller stopping"]));
  });

  it("`ptcluster start` prunes stale log files beyond the newest 60, never a running cluster's nor files not its own", async () => {
    const logDir = join(tmp.dir, "profile_prune", "log");
    const age = (file: string, when: Date) => utimesSync(join(logDir, file), when, when);
    const longAgo = new Date(Date.now() - 30 * 24 * 3600_000);
    // A running cluster whose files are all old: none may go.
    const running = await startTestCluster(tmp.dir, { n: 1, profile: "prune", clusterId: "live" });
    let started = false;
    try {
      // pino opens log files asynchronously: the engine's may appear just after `start` returns.
      const liveFiles = await waitFor(
        () => {
          const files = readdirSync(logDir);
          return ["hub-live.log", "controller-live.stderr", `engine-${running.enginePids[0]}.log`].every((f) =>
            files.includes(f),
          )
            ? files
            : undefined;
        },
        { what: "the running cluster's log files" },
      );
      expect(liveFiles.filter((f) => f.startsWith("engine-local-"))).toHaveLength(2);
      for (const f of liveFiles) age(f, longAgo);
      // A process that is alive (this one) owns a log as an engine would.
      const ownLog = `engine-${process.pid}.log`;
      writeFileSync(join(logDir, ownLog), "");
      age(ownLog, longAgo);
      // Files that are not ptcluster's stay whatever their age.
      writeFileSync(join(logDir, "notes.txt"), "");
      age("notes.txt", longAgo);
      // 70 files of dead writers (pids above Linux's pid_max, 2^22), a minute apart, of each kind.
      const kinds = (pid: number, i: number) =>
        [
          `engine-${pid}.log`,
          `engine-local-${pid}-1.stdout`,
          `engine-ssh-${pid}-3.stderr`,
          `hub-gone${i}.log`,
          `controller-gone${i}.stderr`,
        ][i % 5] as string;
      for (let i = 0; i < 70; i++) {
        const f = kinds(4_194_304 + i, i);
        writeFileSync(join(logDir, f), "");
        age(f, new Date(Date.now() - (i + 1) * 60_000));
      }
      const isLive = (f: string) => liveFiles.includes(f) || f === ownLog || f === "notes.txt";
      const staleBefore = readdirSync(logDir)
        .filter((f) => !isLive(f))
        .map((f) => ({ f, t: statSync(join(logDir, f)).mtimeMs }))
        .sort((x, y) => y.t - x.t)
        .map((x) => x.f);
      expect(staleBefore).toHaveLength(70);
      const c = await ptcluster(tmp.dir, ["start", "-n", "0", "--profile", "prune", "--cluster-id", "c"]);
      expect(c.exitCode, c.stderr).toBe(0);
      started = true;
      expect(c.stdout).toContain(`logs        ${logDir}`);
      const after = new Set(readdirSync(logDir));
      for (const f of staleBefore.slice(0, 60)) expect(after.has(f), f).toBe(true);
      for (const f of staleBefore.slice(60)) expect(after.has(f), f).toBe(false);
      for (const f of [...liveFiles, ownLog, "notes.txt"]) expect(after.has(f), f).toBe(true);
    } finally {
      if (started) await ptcluster(tmp.dir, ["stop", "--profile", "prune", "--cluster-id", "c"]);
      await running.stop();
    }
  });
});
