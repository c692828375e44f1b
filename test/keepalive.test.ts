import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { listClusterStates, pidAlive } from "@ptcluster/protocol";
import { expectGone, ptcluster, useCluster } from "./helpers/cluster.js";
import { jsonLines } from "./helpers/json-lines.js";

const root = fileURLToPath(new URL("..", import.meta.url));

/** How long after its last line a script with an idle client may take to exit (ms). */
const EXIT_WITHIN_MS = 2_000;

type Line = Record<string, unknown>;

/** Runs test/fixtures/idle-client.ts in its own Node process; killed if it outlives `timeout`. */
function spawnScript(dir: string, mode: string, arg: string, options: { timeout?: number; stdin?: boolean }) {
  return execa(process.execPath, ["--import", "tsx", "test/fixtures/idle-client.ts", mode, arg], {
    cwd: root,
    env: { PTCLUSTER_DIR: dir },
    reject: false,
    timeout: options.timeout ?? 15_000,
    stdin: options.stdin ? "pipe" : "ignore",
    buffer: { stdout: false },
  });
}
type Child = ReturnType<typeof spawnScript>;

/** The script's process, the JSON lines it printed so far, and a wait for the first line with `key`. */
function script(
  dir: string,
  mode: string,
  arg = "",
  options: { timeout?: number; stdin?: boolean } = {},
): { child: Child; lines: Line[]; next: (key: string) => Promise<Line> } {
  const child = spawnScript(dir, mode, arg, options);
  const { lines, next } = jsonLines<Line>(child);
  return { child, lines, next };
}

/** Waits for the script to end by itself; returns when it did (ms since epoch) and how. */
async function ended(
  child: Child,
): Promise<{ at: number; exitCode: number | undefined; timedOut: boolean; stderr: string }> {
  const r = await child;
  return { at: Date.now(), exitCode: r.exitCode, timedOut: r.timedOut, stderr: String(r.stderr) };
}

/** The script ran to its end, printed `last`, and exited by itself soon after, with code 0. */
function expectExitedAfterLastLine(run: Awaited<ReturnType<typeof ended>>, lines: Line[]): void {
  expect(run.timedOut, "the script did not exit by itself").toBe(false);
  // zeromq.js notes on stderr when its context takes over 500 ms to end at exit (a loaded machine): not a failure.
  expect(run.stderr.replace(/^\(node:\d+\) WARNING: Waiting for queued ZeroMQ messages.*\n?/m, "")).toBe("");
  expect(run.exitCode).toBe(0);
  const last = lines.find((l) => "last" in l)?.["last"] as number;
  expect(last).toBeTypeOf("number");
  expect(run.at - last).toBeLessThan(EXIT_WITHIN_MS);
}

// A client with nothing pending does not keep Node alive (as `fetch`'s keep-alive sockets do not):
// a script that never calls `rc.close()` ends after its last line. With work pending (a task, a
// wait) it stays until the work settles. The short --client-timeout checks that an idle client
// keeps its heartbeats going.
describe("a client does not keep a finished script alive", () => {
  const ctx = useCluster({ n: 2, extra: ["--client-timeout", "1500"] });

  it("a script that connects, runs one apply and never closes exits after its last line", async () => {
    const s = script(ctx.dir, "apply");
    const run = await ended(s.child);
    expect(s.lines[0]).toEqual({ result: [42, 42] });
    expectExitedAfterLastLine(run, s.lines);
  });

  it("a script that only connects exits", async () => {
    const s = script(ctx.dir, "connect");
    expectExitedAfterLastLine(await ended(s.child), s.lines);
  });

  it("a script that closes nothing says goodbye: the controller forgets its client at once", async () => {
    const s = script(ctx.dir, "connect");
    expectExitedAfterLastLine(await ended(s.child), s.lines);
    // Without a goodbye it would count until --client-timeout (1.5 s) passed.
    expect((await ctx.rc.status()).clients).toBe(1);
  });

  it("a task not awaited keeps the script alive until its result is printed", async () => {
    const s = script(ctx.dir, "pending");
    const run = await ended(s.child);
    expect(run.timedOut).toBe(false);
    expect(run.exitCode).toBe(0);
    const last = s.lines.find((l) => "last" in l)?.["last"] as number;
    const result = s.lines.find((l) => "result" in l);
    expect(result?.["result"]).toBe("slow");
    // The script's code ended before the task did; the process waited for it, then exited.
    expect(result?.["at"] as number).toBeGreaterThan(last);
    expect(run.at - (result?.["at"] as number)).toBeLessThan(EXIT_WITHIN_MS);
  });

  it("a script awaiting rc.waitForEngines stays alive until an engine joins", async () => {
    const s = script(ctx.dir, "wait-engines");
    const { waiting } = await s.next("waiting");
    const { ids: added } = await ctx.rc.addEngines(1);
    const { ids } = await s.next("ids");
    expect((ids as number[]).length).toBe(waiting);
    expect(ids).toContain(added[0]);
    expectExitedAfterLastLine(await ended(s.child), s.lines);
  });

  it("work that ends on a timer, not on a message, lets the script exit too", async () => {
    const s = script(ctx.dir, "wait-timeout");
    const run = await ended(s.child);
    expect(s.lines[0]).toEqual({ error: "ERR_PTC_NO_ENGINES" });
    expectExitedAfterLastLine(run, s.lines);
  });

  it("an idle client still receives notifications: an engine added meanwhile is in rc.ids", async () => {
    const s = script(ctx.dir, "idle-notify", "", { stdin: true });
    const { ready } = await s.next("ready");
    const { ids: added } = await ctx.rc.addEngines(1);
    // The idle client sees the engine come up, by its notification...
    expect((await s.next("up"))["up"]).toBe(added[0]);
    // ...and it is in rc.ids when the script looks later.
    s.child.stdin?.write("look\n");
    const { ids } = await s.next("ids");
    expect(ids).toEqual([...(ready as number[]), ...added].sort((a, b) => a - b));
    const run = await ended(s.child);
    expect(run.timedOut, "the script did not exit once stdin closed").toBe(false);
    expect(run.exitCode).toBe(0);
  });

  it("a client idle for longer than --client-timeout is still connected, and works", async () => {
    const s = script(ctx.dir, "idle-long", "2500");
    await s.next("ready");
    const run = await ended(s.child);
    // The controller did not take it for gone while it was idle (it would ignore its task then).
    expect(s.lines.find((l) => "result" in l)).toEqual({ result: "still here", clients: 2, state: "connected" });
    expectExitedAfterLastLine(run, s.lines);
  });

  // A started cluster does not hold the process either; a detached one runs on until stopped.
  it("a script with a client of startCluster({ detached: true }).connect() exits; the cluster runs on", async () => {
    const profile = "keepalive";
    const clusterId = "started";
    const s = script(ctx.dir, "start-cluster", `${profile}/${clusterId}`, { timeout: 40_000 });
    const run = await ended(s.child);
    const states = listClusterStates().filter(
      ({ state }) => state.profile === profile && state.clusterId === clusterId,
    );
    const pids = states.flatMap(({ state }) => [state.hubPid, ...state.enginePids]);
    try {
      expect(s.lines[0]).toEqual({ result: [true] });
      expectExitedAfterLastLine(run, s.lines);
      expect(states).toHaveLength(1);
      expect(pids.every(pidAlive)).toBe(true);
    } finally {
      const stop = await ptcluster(ctx.dir, ["stop", "--profile", profile, "--cluster-id", clusterId]);
      await expectGone(pids, 5_000);
      expect(stop.exitCode).toBe(0);
    }
  }, 60_000);
});
