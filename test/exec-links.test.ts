import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ResourceLimitError, TaskCancelledError, TaskTimeoutError, type Client } from "@ptcluster/client";
import { tempClusterDir, useCluster, type TestCluster } from "./helpers/cluster.js";
import { failure, gatedTask, scratchDir } from "./helpers/lb.js";
import { direct } from "./helpers/direct.js";
import { waitFor } from "./helpers/wait.js";

// Clients' links to engines' executor threads (the default; `PTCLUSTER_DIRECT=exec` names it,
// docs/architecture.md, "The direct path"): DirectView tasks go to the executor, which runs them and
// answers without its supervisor on the way; the supervisor learns what ran in batches and keeps
// its authority. Each test below is one of the ways a first try at this went wrong.

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
  it("is the default: a client without PTCLUSTER_DIRECT uses executor links, one with PTCLUSTER_DIRECT=lean does not", async () => {
    const plain = ctx.rc;
    await waitFor(
      async () => {
        const before = direct(plain).executor;
        await plain.engine(0).apply(() => 0);
        return direct(plain).executor > before;
      },
      { what: "a default client's task to go on an executor link" },
    );
    process.env["PTCLUSTER_DIRECT"] = "lean";
    const lean = await ctx.cluster.connect().finally(() => delete process.env["PTCLUSTER_DIRECT"]);
    try {
      // The first call goes through the controller while the link is dialled.
      await waitFor(async () => (await lean.engine(0).apply(() => engine.id)) === 0 && direct(lean).lean > 0, {
        what: "a task to go on the lean link",
      });
      const before = direct(lean).lean;
      for (let i = 0; i < 5; i++) expect(await lean.engine(0).apply(() => engine.id)).toBe(0);
      expect(direct(lean).lean - before).toBe(5);
      expect(direct(lean).executor).toBe(0);
    } finally {
      await lean.close();
    }
  });

  it("a task with a timeout goes on the executor link; its supervisor enforces the timeout from its start", async () => {
    await execUp(0);
    const work = scratchDir(ctx.dir);
    const before = direct(rc).executor;
    // One that sees its signal: it returns, and the timeout's verdict wins over its own result.
    const t0 = Date.now();
    const soft = await failure(() =>
      rc.engine(0).with({ timeout: 300 }).apply(gatedTask, join(work, "never"), join(work, "soft")),
    );
    expect(soft).toBeInstanceOf(TaskTimeoutError);
    expect((soft as TaskTimeoutError).timeoutMs).toBe(300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(existsSync(join(work, "soft.cancelled"))).toBe(true);
    // One that holds the thread: the supervisor replaces the executor after the grace period.
    const log = join(work, "log");
    const t1 = Date.now();
    const hard = await failure(() => rc.engine(0).with({ timeout: 200 }).apply(spin, 20_000, log));
    expect(hard).toBeInstanceOf(TaskTimeoutError);
    expect(Date.now() - t1).toBeLessThan(5_000);
    expect(direct(rc).executor - before).toBe(2);
    expect(lines(log)).toEqual([]);
    // A quick task under a timeout is not touched, and the new executor's link comes back.
    expect(
      await rc
        .engine(0)
        .with({ timeout: 5_000 })
        .apply(() => "quick"),
    ).toBe("quick");
    await execUp(0);
    expect(direct(rc).failed).toBe(0);
  });

  it("a result over 1 MiB the executor had when it ended, its client not having read it, reaches the client", async () => {
    // No shared memory for this client: its large values travel on the links (as across hosts).
    const far = await onExecutorLink(ctx.cluster, 1, { PTCLUSTER_SHM: "0" });
    try {
      const work = scratchDir(ctx.dir);
      const [started, gate, exiting] = ["started", "gate", "exiting"].map((f) => join(work, f)) as [
        string,
        string,
        string,
      ];
      const big = far.engine(1).apply(
        async (files: string[], n: number) => {
          const fs = require("node:fs") as typeof import("node:fs");
          const [startedFile, gateFile, exitingFile] = files as [string, string, string];
          fs.writeFileSync(startedFile, "");
          while (!fs.existsSync(gateFile)) await new Promise((r) => setTimeout(r, 5));
          // The executor ends once the result has gone (posted as the task returns), unread.
          setImmediate(() => {
            fs.writeFileSync(exitingFile, "");
            process.exit(1);
          });
          return new Uint8Array(n).fill(7);
        },
        [started, gate, exiting],
        48 << 20,
      );
      await waitFor(() => existsSync(started), { what: "the task to start" });
      // This client's thread is held from the gate's opening until the executor ends: the result
      // cannot be read (nor acknowledged) before the executor is gone.
      writeFileSync(gate, "");
      for (const deadline = Date.now() + 10_000; !existsSync(exiting);)
        if (Date.now() > deadline) throw new Error("the executor did not end within 10 s");
      const value = await Promise.race([
        big,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the result never came")), 8_000)),
      ]);
      expect(value.length).toBe(48 << 20);
      expect(value[0]).toBe(7);
      expect(value[value.length - 1]).toBe(7);
      expect(await far.engine(1).apply(() => "after")).toBe("after");
    } finally {
      await far.close();
    }
  });
});

/**
 * A client (`PTCLUSTER_DIRECT=exec`, and `env` in its environment while it connects) whose calls
 * to engine `id` go on its executor's link.
 */
async function onExecutorLink(cluster: TestCluster, id = 0, env: Record<string, string> = {}): Promise<Client> {
  const set = { ...env, PTCLUSTER_DIRECT: "exec" };
  Object.assign(process.env, set);
  const rc = await cluster.connect().finally(() => {
    for (const k of Object.keys(set)) delete process.env[k];
  });
  try {
    await waitFor(
      async () => {
        const before = direct(rc).executor;
        await rc.engine(id).apply(() => 0);
        return direct(rc).executor > before;
      },
      { what: `a task to go on engine ${id}'s executor link` },
    );
  } catch (err) {
    await rc.close();
    throw err;
  }
  return rc;
}

describe("a task of an executor's link that holds it before any report or heartbeat read its start", () => {
  // Heartbeats far apart: the supervisor reads the start table at each, and these tests are about
  // what happens before anything read it.
  const ctx = useCluster({ dir: tmp.dir, n: 1, extra: ["--max-memory", "64", "--heartbeat", "3000"] });

  it("cancelled then, it is stopped as any: a new executor after the grace period, and the engine serves again", async () => {
    const rc = await onExecutorLink(ctx.cluster);
    try {
      const tag = join(scratchDir(ctx.dir), "spinning");
      const ar = rc.engine(0).apply((file: string) => {
        (require("node:fs") as typeof import("node:fs")).writeFileSync(file, "");
        for (;;);
      }, tag);
      await waitFor(() => existsSync(tag), { what: "the task to start" });
      ar.abort();
      expect(await failure(() => ar)).toBeInstanceOf(TaskCancelledError);
      const next = rc.engine(0).apply(() => "next");
      const late = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("the executor was never stopped")), 10_000),
      );
      expect(await Promise.race([next, late])).toBe("next");
    } finally {
      await rc.close();
    }
  });

  it("the executor ends (out of memory): the task fails once, with the error a task on the lean link gets, and is not run again", async () => {
    const rc = await onExecutorLink(ctx.cluster);
    try {
      const log = join(scratchDir(ctx.dir), "log");
      const before = direct(rc).executor;
      // It never yields: the executor's report of its start cannot go before the heap runs out.
      const err = await failure(() =>
        rc.engine(0).apply((file: string) => {
          (require("node:fs") as typeof import("node:fs")).appendFileSync(file, "ran\n");
          const hog: number[][] = [];
          for (;;) hog.push(new Array(1_000_000).fill(1));
        }, log),
      );
      expect(direct(rc).executor).toBe(before + 1);
      expect(err).toBeInstanceOf(ResourceLimitError);
      expect((err as ResourceLimitError).code).toBe("ERR_PTC_OUT_OF_MEMORY");
      expect(lines(log)).toEqual(["ran"]);
      expect(await rc.engine(0).apply(() => "next")).toBe("next");
      expect(lines(log)).toEqual(["ran"]);
    } finally {
      await rc.close();
    }
  });
});
