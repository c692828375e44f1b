import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TaskCancelledError, type Client } from "@ptcluster/client";
import { tempClusterDir, useCluster } from "./helpers/cluster.js";
import { failure, gatedTask, scratchDir } from "./helpers/lb.js";
import { direct } from "./helpers/direct.js";
import { waitFor } from "./helpers/wait.js";

// Clients' links to engines' executor threads (`PTCLUSTER_DIRECT=exec`, docs/architecture.md, "The
// direct path"): DirectView tasks go to the executor, which runs them and answers without its
// supervisor on the way; the supervisor learns what ran in batches and keeps its authority. Each
// test below is one of the ways a first try at this went wrong.

const HEARTBEAT = 200;
const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

/** Holds the executor thread (no await) for `ms`, then marks `file`. */
const spin = (ms: number, file: string): number => {
  const until = Date.now() + ms;
  while (Date.now() < until);
  (require("node:fs") as typeof import("node:fs")).appendFileSync(file, "spun\n");
  return engine.id;
};

/** Appends `tag` to `file` (each run leaves one line). */
const mark = (file: string, tag: string): string => {
  (require("node:fs") as typeof import("node:fs")).appendFileSync(file, `${tag}\n`);
  return tag;
};

const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, "utf8").trim().split("\n") : []);

describe("clients' links to engines' executors", () => {
  const ctx = useCluster({ dir: tmp.dir, n: 2, extra: ["--heartbeat", String(HEARTBEAT), "--client-timeout", "1000"] });
  let rc: Client;
  beforeAll(async () => {
    process.env["PTCLUSTER_DIRECT"] = "exec";
    rc = await ctx.cluster.connect().finally(() => delete process.env["PTCLUSTER_DIRECT"]);
  });
  afterAll(() => rc?.close());

  /** Calls engine `id` until a call goes on its executor's link. */
  async function execUp(id: number): Promise<void> {
    await waitFor(
      async () => {
        const before = direct(rc).executor;
        expect(await rc.engine(id).apply(() => 0)).toBe(0);
        return direct(rc).executor > before;
      },
      { what: `a task to go on engine ${id}'s executor link` },
    );
  }

  it("DirectView calls go on executor links, with the results of the lean links", async () => {
    await execUp(0);
    await execUp(1);
    const before = direct(rc);
    const dv = rc.view();
    expect(await dv.apply((a: number) => a + engine.id, 10)).toEqual([10, 11]);
    expect(await dv.execute("globalThis.q = 2 * engine.id; q")).toEqual([0, 2]);
    await dv.push({ w: 5 });
    expect(await dv.pull("w")).toEqual([5, 5]);
    expect(
      await rc
        .engine(1)
        .apply((n: number) => new Float64Array(n).fill(engine.id), 3)
        .then((a) => [...a]),
    ).toEqual([1, 1, 1]);
    const after = direct(rc);
    expect(after.executor - before.executor).toBe(9);
    expect(after.results - before.results).toBe(9);
    expect(after.failed).toBe(0);
    expect(after.viaController).toBe(before.viaController);
    // The supervisors learnt of them (in batches): the controller's records end, nothing left running.
    await waitFor(
      async () => {
        const qs = await rc.queueStatus();
        return [0, 1].every((id) => qs.engines[id]?.running === 0 && qs.engines[id]?.queued === 0);
      },
      { what: "the controller to see every task done" },
    );
  });

  it("a task aborted while it runs: its own result (it returns on engine.signal) never reaches the client, the verdict does", async () => {
    await execUp(0);
    const work = scratchDir(ctx.dir);
    const tag = join(work, "a");
    const before = direct(rc).executor;
    const ar = rc.engine(0).apply(gatedTask, join(work, "never"), tag);
    await waitFor(() => existsSync(`${tag}.started`), { what: "the task to start" });
    expect(direct(rc).executor).toBe(before + 1);
    // Known to its supervisor (the executor's report) under the controller's id before it is aborted.
    const msgId = ar.msgIds[0] as string;
    await waitFor(async () => (await rc.status()).engines.some((e) => e.current.some((t) => t.taskId === msgId)), {
      what: "the engine to report the task running",
    });
    ar.abort();
    // gatedTask returns "cancelled" when its signal aborts: that result must not win over the verdict.
    expect(await failure(() => ar)).toBeInstanceOf(TaskCancelledError);
    await waitFor(() => existsSync(`${tag}.cancelled`), { what: "the task to see its signal" });
    expect(await rc.engine(0).apply(() => "free")).toBe("free");
  });

  it("a task cancelled before its supervisor heard of it never starts", async () => {
    await execUp(1);
    const work = scratchDir(ctx.dir);
    const log = join(work, "log");
    // The first call holds the executor thread: the second waits unread on its link, and its
    // executor cannot report it; its supervisor gets its header and the cancel meanwhile.
    const first = rc.engine(1).apply(spin, 1_500, log);
    const second = rc.engine(1).apply(mark, log, "second");
    second.abort();
    expect(await failure(() => second)).toBeInstanceOf(TaskCancelledError);
    expect(await first).toBe(1);
    expect(await rc.engine(1).apply(mark, log, "third")).toBe("third");
    expect(lines(log)).toEqual(["spun", "third"]);
    expect(direct(rc).failed).toBe(0);
  });

  it("a synchronous task holding the executor past the link limit (6 heartbeats): the link stays, tasks behind it run", async () => {
    await execUp(0);
    const work = scratchDir(ctx.dir);
    const log = join(work, "log");
    const before = direct(rc);
    const first = rc.engine(0).apply(spin, HEARTBEAT * 10, log);
    const second = rc.engine(0).apply(mark, log, "second");
    expect(await first).toBe(0);
    expect(await second).toBe("second");
    const after = direct(rc);
    expect(after.executor - before.executor).toBe(2);
    expect(after.failed).toBe(0);
    expect(after.viaController).toBe(before.viaController);
    expect(lines(log)).toEqual(["spun", "second"]);
    // Neither side gave the executor's link up: the next call goes on it too.
    expect(await rc.engine(0).apply(mark, log, "third")).toBe("third");
    expect(direct(rc).executor - before.executor).toBe(3);
  });

  it("an executor that ends with tasks unread on its link: they run once on the next executor, and its link comes back", async () => {
    await execUp(1);
    const work = scratchDir(ctx.dir);
    const log = join(work, "log");
    const crash = rc.engine(1).apply((file: string) => {
      const until = Date.now() + 300;
      while (Date.now() < until);
      (require("node:fs") as typeof import("node:fs")).appendFileSync(file, "crash\n");
      process.exit(3);
    }, log);
    const b = rc.engine(1).apply(mark, log, "b");
    const c = rc.engine(1).apply(mark, log, "c");
    expect(await failure(() => crash)).toMatchObject({ code: "ERR_PTC_TASK_CRASHED" });
    expect(await b).toBe("b");
    expect(await c).toBe("c");
    expect(lines(log)).toEqual(["crash", "b", "c"]);
    // The engine named its new executor's endpoint: later calls go there again.
    await execUp(1);
    expect(direct(rc).failed).toBe(0);
  });
});
