import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CompositeError, TaskCancelledError } from "@ptcluster/client";
import { ptcluster, useCluster } from "./helpers/cluster.js";
import { failure, gatedTask, scratchDir } from "./helpers/lb.js";
import { waitFor } from "./helpers/wait.js";

// Abort from anywhere and vanished clients (issue 12): another client process, `ptcluster abort`,
// and a client killed while its task spins. Engines have concurrency 1 and a grace period of 1 s.

const root = fileURLToPath(new URL("..", import.meta.url));
const CLIENT_TIMEOUT = 1_000;
const HEARTBEAT = 200;
const GRACE = 1_000;

/** Runs on an engine: writes `marker-<engine id>`, then spins without yielding (20 s at most). */
const spin = (marker: string): string => {
  require("node:fs").writeFileSync(`${marker}-${engine.id}`, "");
  const until = Date.now() + 20_000;
  while (Date.now() < until);
  return "spun";
};

/** Runs a fixture script of test/fixtures with tsx, in this cluster's PTCLUSTER_DIR. */
function fixture(dir: string, name: string, args: string[]) {
  return execa(process.execPath, ["--import", "tsx", `test/fixtures/${name}`, ...args], {
    cwd: root,
    env: { PTCLUSTER_DIR: dir },
    reject: false,
    buffer: false,
  });
}

/** The first line a child process prints. */
function firstLine(child: ReturnType<typeof fixture>): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    child.stdout?.on("data", (d: Buffer) => {
      text += d.toString();
      if (text.includes("\n")) resolve(text.split("\n")[0] as string);
    });
    void child.then((r) => reject(new Error(`the client exited early (${r.exitCode}): ${String(r.stderr ?? "")}`)));
  });
}

describe("abort from anywhere", () => {
  const ctx = useCluster({
    n: 2,
    extra: ["--client-timeout", String(CLIENT_TIMEOUT), "--heartbeat", String(HEARTBEAT)],
  });

  it("another client process cancels a running spin by its msg id (rc.abort(msgId))", async () => {
    const work = scratchDir(ctx.dir);
    const ar = ctx.rc.engine(0).apply(spin, join(work, "s"));
    await waitFor(() => existsSync(join(work, "s-0")), { what: "the spin to start" });
    const child = fixture(ctx.dir, "remote-abort.ts", [ar.msgIds[0] as string, "void"]);
    expect(await firstLine(child)).toBe("sent");
    expect((await child).exitCode).toBe(0);
    expect(await failure(() => ar)).toBeInstanceOf(TaskCancelledError);
    expect(await ctx.rc.engine(0).apply(() => "free")).toBe("free");
  });

  it("rc.abort({ tasks }) from another process says what it cancelled", async () => {
    const work = scratchDir(ctx.dir);
    const ar = ctx.rc.engine(1).apply(spin, join(work, "s"));
    const queued = ctx.rc.engine(1).apply(() => "never");
    await waitFor(() => existsSync(join(work, "s-1")), { what: "the spin to start" });
    // The controller knows it runs from the engine's heartbeat.
    await waitFor(async () => (await ctx.rc.status()).engines.find((e) => e.id === 1)?.current?.length === 1, {
      what: "engine 1 to report the spin",
    });
    const child = fixture(ctx.dir, "remote-abort.ts", [`${ar.msgIds[0] as string}`, "summary"]);
    expect(JSON.parse(await firstLine(child))).toEqual({ running: 1, queued: 0, engines: [1] });
    await child;
    expect(await failure(() => ar)).toBeInstanceOf(TaskCancelledError);
    // The other task of that engine was not named: it runs.
    expect(await queued).toBe("never");
  });

  it("rc.getResult(msgId).abort() from a second session cancels the running task", async () => {
    const work = scratchDir(ctx.dir);
    const tag = join(work, "g");
    const ar = ctx.rc.engine(0).apply(gatedTask, join(work, "never"), tag);
    await waitFor(() => existsSync(`${tag}.started`), { what: "the task to start" });
    const other = await ctx.cluster.connect();
    try {
      const adopted = other.getResult(ar.msgIds[0] as string);
      await other.queueStatus(); // adopted by then
      adopted.abort();
      expect(await failure(() => adopted)).toBeInstanceOf(TaskCancelledError);
      await waitFor(() => existsSync(`${tag}.cancelled`), { what: "the task to see its signal" });
    } finally {
      await other.close();
    }
  });

  it("ptcluster abort --engine ID stops what runs and waits there, and only there; --all stops everything", async () => {
    const { rc, dir } = ctx;
    const work = scratchDir(ctx.dir);
    const tag = join(work, "g");
    const kept = rc.engine(0).apply(gatedTask, join(work, "gate"), tag);
    const spun = rc.engine(1).apply(spin, join(work, "s"));
    const behind = rc.engine(1).apply(() => "never");
    await waitFor(() => existsSync(`${tag}.started`) && existsSync(join(work, "s-1")), { what: "both tasks to start" });
    await waitFor(async () => (await rc.status()).engines.find((e) => e.id === 1)?.current?.length === 1, {
      what: "engine 1 to report the spin",
    });
    const r = await ptcluster(dir, ["abort", "--engine", "1"]);
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^Cancelled 2 tasks on engine 1: 1 running .*, 1 queued\.$/);
    expect(await failure(() => spun)).toBeInstanceOf(TaskCancelledError);
    expect(await failure(() => behind)).toBeInstanceOf(TaskCancelledError);
    expect(existsSync(`${tag}.cancelled`)).toBe(false);

    const both = rc.view().apply(spin, join(work, "b"));
    await waitFor(() => existsSync(join(work, "b-1")), { what: "the spin on engine 1 to start" });
    const all = await ptcluster(dir, ["abort", "--all", "--json"]);
    expect(all.exitCode).toBe(0);
    const summary = JSON.parse(all.stdout) as { running: number; queued: number; engines: number[] };
    expect(summary.running + summary.queued).toBe(3);
    expect(summary.engines).toEqual([0, 1]);
    expect(await failure(() => kept)).toBeInstanceOf(TaskCancelledError);
    const err = await failure(() => both);
    expect(err).toBeInstanceOf(CompositeError);
    for (const e of (err as CompositeError).errors) expect(e).toBeInstanceOf(TaskCancelledError);
    expect(await rc.view().apply(() => "next")).toEqual(["next", "next"]);

    const nothing = await ptcluster(dir, ["abort", "--all"]);
    expect(nothing.stdout.trim()).toBe("Nothing to abort: no such task is queued or running.");

    // A msg id the controller does not know (this one finished) is said to be, not silently dropped.
    const finished = rc.engine(0).apply(() => "done");
    expect(await finished).toBe("done");
    const gone = await ptcluster(dir, ["abort", "--json", ...finished.msgIds]);
    expect(JSON.parse(gone.stdout)).toEqual({ running: 0, queued: 0, engines: [], awaited: 1 });
    const said = await ptcluster(dir, ["abort", ...finished.msgIds]);
    expect(said.stdout.trim()).toBe(
      "Nothing to abort: no such task is queued or running. 1 named task not known to the controller (finished, or never sent) is cancelled if it appears within 1 s.",
    );
  });

  it("ptcluster abort without a selector, or with a wrong one, is refused", async () => {
    const bare = await ptcluster(ctx.dir, ["abort"]);
    expect(bare.exitCode).toBe(2);
    expect(bare.stderr).toMatch(/name what to abort: task ids \(from ar\.msgIds\), --engine ID, or --all/);
    const badId = await ptcluster(ctx.dir, ["abort", "--engine", "x"]);
    expect(badId.exitCode).toBe(2);
    expect(badId.stderr).toMatch(/--engine takes an engine id/);
    const unknown = await ptcluster(ctx.dir, ["abort", "--engine", "9"]);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toMatch(/No engine 9 in this cluster \(engines: 0, 1\); nothing was aborted/);
    const badTask = await ptcluster(ctx.dir, ["abort", "12:3"]);
    expect(badTask.exitCode).toBe(2);
  });

  it("a client SIGKILLed while its task spins: the task is cancelled, the engine serves again within the client timeout and a heartbeat", async () => {
    const work = scratchDir(ctx.dir);
    const child = fixture(ctx.dir, "spinning-client.ts", [join(work, "spin")]);
    const { msgId } = JSON.parse(await firstLine(child)) as { msgId: string };
    const killed = Date.now();
    child.kill("SIGKILL");
    await child;
    expect(await ctx.rc.engine(0).apply(() => "free")).toBe("free");
    // Silent past the client timeout (checked each heartbeat), then the spin's grace period.
    expect(Date.now() - killed).toBeLessThan(CLIENT_TIMEOUT + HEARTBEAT + GRACE + 1_000);
    // Its result is kept for rc.getResult, as for any client that went away.
    expect(await failure(() => ctx.rc.getResult(msgId))).toBeInstanceOf(TaskCancelledError);
  });
});
