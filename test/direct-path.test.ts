import { afterAll, describe, expect, it } from "vitest";
import { execa, execaSync } from "execa";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  EngineLostError,
  RemoteError,
  TaskCancelledError,
  TaskTimeoutError,
  UnknownTaskError,
  type Client,
} from "@ptcluster/client";
import { BIN, ptcluster, tempClusterDir, useCluster, type TestCluster } from "./helpers/cluster.js";
import { failure, gatedTask, scratchDir } from "./helpers/lb.js";
import { netnsUnavailable, useNetCluster, type NetHost } from "./helpers/netns.js";
import { direct } from "./helpers/direct.js";
import { waitFor } from "./helpers/wait.js";

// The direct path (docs/architecture.md): DirectView tasks go from the client straight to each
// engine's peer endpoint and their results come straight back; the controller keeps the records.
// What travels which way is asserted on the counters of `rc.connectionStats().direct` and of the
// engines' link reports, never on timings.

declare const k: number;
const root = fileURLToPath(new URL("..", import.meta.url));
const HEARTBEAT = 200;
// One PTCLUSTER_DIR for both clusters of this file (one after the other).
const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

/** A client with the direct path off (`PTCLUSTER_DIRECT=off`, read when it connects). */
async function controllerOnly(cluster: TestCluster): Promise<Client> {
  process.env["PTCLUSTER_DIRECT"] = "off";
  try {
    return await cluster.connect();
  } finally {
    delete process.env["PTCLUSTER_DIRECT"];
  }
}

/** Calls through the view until this client's links to its engines carry tasks (the first call dials them). */
async function linksUp(rc: Client, ids: number[]): Promise<void> {
  await waitFor(
    async () => {
      const before = direct(rc).tasks;
      await rc.view(ids).apply(() => 0);
      return direct(rc).tasks - before === ids.length;
    },
    { what: "the direct links to carry tasks" },
  );
}

/**
 * Engine `id`'s view once `rc` sent it a stream of 20 direct calls: the controller gets such
 * calls' headers every 20 ms, not after each call, so the next one's may still be on its way.
 */
async function afterAStream(rc: Client, id: number) {
  await linksUp(rc, [id]);
  const e = rc.engine(id);
  for (let i = 0; i < 20; i++) expect(await e.apply((x: number) => x, i)).toBe(i);
  return e;
}

/** What a call settles to, in a form two paths can be compared by. */
async function outcome(p: PromiseLike<unknown>): Promise<unknown> {
  try {
    return { value: await p };
  } catch (err) {
    const e = err as Error & { code?: string; remoteName?: string; errors?: Error[] };
    const one = (x: Error & { code?: string; remoteName?: string }) => ({
      class: x.constructor.name,
      code: x.code,
      remoteName: x.remoteName,
      message: x.message,
    });
    return { error: one(e), errors: e.errors?.map(one) };
  }
}

describe("the direct path on one host", () => {
  const ctx = useCluster({ dir: tmp.dir, n: 2, extra: ["--heartbeat", String(HEARTBEAT), "--client-timeout", "1000"] });

  it("DirectView calls go straight to the engines, with the controller path's results, errors and timeouts", async () => {
    const { rc, cluster } = ctx;
    const plain = await controllerOnly(cluster);
    try {
      await linksUp(rc, [0, 1]);
      const calls = (c: Client) => {
        const dv = c.view();
        return [
          () => dv.apply((a: number, b: string) => `${a}:${b}:${engine.id}`, 7, "x"),
          () => dv.execute("globalThis.k = 40 + engine.id; k"),
          () => dv.push({ k: 5 }),
          () => dv.pull("k"),
          () => dv.scatter("part", [1, 2, 3, 4, 5]),
          () => dv.gather("part"),
          () => dv.map((x: number) => x * k, [1, 2, 3, 4]),
          () =>
            dv.apply(() => {
              throw new TypeError(`bad on ${engine.id}`);
            }),
          () =>
            c
              .view([1])
              .with({ timeout: 50 })
              .apply(() => new Promise((r) => setTimeout(r, 5_000))),
          () => c.engine(0).apply((n: number) => new Float64Array(n).fill(engine.id + 0.5), 2_000),
        ];
      };
      const before = direct(rc);
      const got: unknown[] = [];
      for (const call of calls(rc)) got.push(await outcome(call()));
      const after = direct(rc);
      const want: unknown[] = [];
      for (const call of calls(plain)) want.push(await outcome(call()));
      expect(got).toEqual(want);
      // Spot checks, so that equal cannot mean equally wrong.
      expect(got[0]).toEqual({ value: ["7:x:0", "7:x:1"] });
      expect((got[7] as { errors: Array<{ class: string }> }).errors.map((e) => e.class)).toEqual([
        RemoteError.name,
        RemoteError.name,
      ]);
      expect((got[8] as { errors: Array<{ class: string }> }).errors.map((e) => e.class)).toEqual([
        TaskTimeoutError.name,
      ]);
      // Every task of this client went straight (one per engine and call, a block per engine for the map), none through the controller.
      expect(after.tasks - before.tasks).toBe(18);
      expect(after.results - before.results).toBe(after.tasks - before.tasks);
      // On the engines' lean endpoints (plain TCP, no ZeroMQ), as every engine here has one.
      expect(after.lean - before.lean).toBe(18);
      expect(after.viaController).toBe(before.viaController);
      expect(after.failed).toBe(0);
      expect(direct(plain).tasks).toBe(0);
      // The engines count what came straight to them, in their heartbeats.
      await waitFor(async () => (await rc.status()).engines.every((e) => (e.link?.direct?.tasks ?? 0) >= 10), {
        what: "the engines to report direct tasks",
      });
      const qs = await rc.queueStatus();
      for (const id of [0, 1]) expect(qs.engines[id]).toMatchObject({ queued: 0, running: 0 });
    } finally {
      await plain.close();
    }
  });

  it("PTCLUSTER_DIRECT=zmq keeps a client on the engines' ZeroMQ peer endpoints, with the same results", async () => {
    process.env["PTCLUSTER_DIRECT"] = "zmq";
    const zc = await ctx.cluster.connect().finally(() => delete process.env["PTCLUSTER_DIRECT"]);
    try {
      await linksUp(zc, [0, 1]);
      const before = direct(zc);
      expect(await zc.view().apply((x: number) => x + engine.id, 10)).toEqual([10, 11]);
      expect(direct(zc).tasks - before.tasks).toBe(2);
      expect(direct(zc).lean).toBe(0);
    } finally {
      await zc.close();
    }
  });

  it("a direct task is cancelled like any: engine.signal aborts it and the result rejects with TaskCancelledError", async () => {
    const { rc } = ctx;
    await linksUp(rc, [0]);
    const work = scratchDir(ctx.dir);
    const tag = join(work, "c");
    const before = direct(rc).tasks;
    const ar = rc.engine(0).apply(gatedTask, join(work, "never"), tag);
    await waitFor(() => existsSync(`${tag}.started`), { what: "the task to start" });
    expect(direct(rc).tasks).toBe(before + 1);
    // The controller knows it (the record came with the task's header), so queueStatus sees it.
    expect((await rc.queueStatus()).engines[0]).toMatchObject({ running: 1 });
    ar.abort();
    expect(await failure(() => ar)).toBeInstanceOf(TaskCancelledError);
    await waitFor(() => existsSync(`${tag}.cancelled`), { what: "the task to see its signal" });
    expect(await rc.engine(0).apply(() => "free")).toBe("free");
  });

  it("rc.abort(msgId) from another process and ptcluster abort stop direct tasks", async () => {
    const { rc, dir } = ctx;
    await linksUp(rc, [0, 1]);
    const work = scratchDir(ctx.dir);
    const before = direct(rc).tasks;
    const a = rc.engine(0).apply(gatedTask, join(work, "never"), join(work, "a"));
    const b = rc.engine(1).apply(gatedTask, join(work, "never"), join(work, "b"));
    await waitFor(() => existsSync(join(work, "a.started")) && existsSync(join(work, "b.started")), {
      what: "both tasks to start",
    });
    expect(direct(rc).tasks).toBe(before + 2);
    const child = await execa(
      process.execPath,
      ["--import", "tsx", "test/fixtures/remote-abort.ts", a.msgIds[0] as string, "void"],
      { cwd: root, env: { PTCLUSTER_DIR: dir }, reject: false },
    );
    expect(child.stdout.trim()).toBe("sent");
    expect(await failure(() => a)).toBeInstanceOf(TaskCancelledError);
    const r = await ptcluster(dir, ["abort", b.msgIds[0] as string]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^Cancelled 1 task/);
    expect(await failure(() => b)).toBeInstanceOf(TaskCancelledError);
    expect(existsSync(join(work, "a.cancelled")) && existsSync(join(work, "b.cancelled"))).toBe(true);
  });

  it("rc.getResult(msgId) from a second client gets a direct task's result, whether its client stays or leaves", async () => {
    const { rc, cluster } = ctx;
    const work = scratchDir(ctx.dir);
    for (const leaves of [false, true]) {
      const submitter = await cluster.connect();
      try {
        await linksUp(submitter, [1]);
        const tag = join(work, `g${String(leaves)}`);
        const gate = join(work, `gate${String(leaves)}`);
        const ar = submitter.engine(1).apply(gatedTask, gate, tag);
        await waitFor(() => existsSync(`${tag}.started`), { what: "the task to start" });
        expect(direct(submitter).tasks).toBeGreaterThan(0);
        const msgId = ar.msgIds[0] as string;
        // A stream of calls sends the controller their headers every 20 ms (docs/architecture.md,
        // "The direct path"): the task is adopted once its engine runs it under the controller's id.
        await waitFor(async () => (await rc.status()).engines.some((e) => e.current.some((t) => t.taskId === msgId)), {
          what: "the engine to report the task under the controller's id (its header at most 20 ms after its call)",
        });
        if (leaves) await submitter.close();
        const adopted = rc.getResult(msgId);
        await rc.queueStatus(); // adopted by then
        writeFileSync(gate, "");
        expect(await adopted).toBe("opened");
        if (!leaves) expect(await ar).toBe("opened");
      } finally {
        await submitter.close();
      }
    }
  });

  it("rc.getResult(msgId) at once after a stream of direct calls finds the last one, whose header may still be on its way", async () => {
    const { rc, cluster } = ctx;
    const work = scratchDir(ctx.dir);
    const submitter = await cluster.connect();
    try {
      const e = await afterAStream(submitter, 1);
      const gate = join(work, "gate");
      const ar = e.apply(gatedTask, gate, join(work, "late"));
      const adopted = rc.getResult(ar.msgIds[0] as string);
      await waitFor(() => existsSync(join(work, "late.started")), { what: "the task to start" });
      // Once the controller has the task's header, the adoption it held has been made.
      await waitFor(async () => ((await rc.queueStatus()).engines[1]?.running ?? 0) > 0, {
        what: "the task's header at the controller",
      });
      writeFileSync(gate, "");
      expect(await adopted).toBe("opened");
      expect(await ar).toBe("opened");
      // A task its client never sent is still unknown, after a bounded wait for its header.
      const t0 = Date.now();
      const never = await failure(() => rc.getResult(ar.msgIds[0]!.replace(/:\d+$/, ":999999")));
      expect(never).toBeInstanceOf(UnknownTaskError);
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      await submitter.close();
    }
  });

  it("rc.abort(msgId) from another client at once after a stream of direct calls cancels the last one, whose header may still be on its way", async () => {
    const { rc, cluster } = ctx;
    const work = scratchDir(ctx.dir);
    const submitter = await cluster.connect();
    try {
      const e = await afterAStream(submitter, 1);
      const tag = join(work, "aborted-late");
      const ar = e.apply(gatedTask, join(work, "never-opened"), tag);
      await rc.abort({ tasks: ar.msgIds });
      expect(await failure(() => ar)).toBeInstanceOf(TaskCancelledError);
      // It ran (the engine had it straight from the client) and saw engine.signal.
      expect(existsSync(`${tag}.started`)).toBe(existsSync(`${tag}.cancelled`));
    } finally {
      await submitter.close();
    }
  });

  it("an engine SIGKILLed during a direct call: the call rejects with EngineLostError within the heartbeat window", async () => {
    const { rc } = ctx;
    await linksUp(rc, [1]);
    const work = scratchDir(ctx.dir);
    const tag = join(work, "k");
    const before = direct(rc).tasks;
    const ar = rc.engine(1).apply(gatedTask, join(work, "never"), tag);
    await waitFor(() => existsSync(`${tag}.started`), { what: "the task to start" });
    expect(direct(rc).tasks).toBe(before + 1);
    const pid = (await rc.status()).engines.find((e) => e.id === 1)?.pid as number;
    const t0 = Date.now();
    process.kill(pid, "SIGKILL");
    const err = await failure(() => ar);
    expect(err).toBeInstanceOf(EngineLostError);
    expect((err as EngineLostError).engineId).toBe(1);
    // Six missed heartbeats declare an engine dead; slack for a loaded machine.
    expect(Date.now() - t0).toBeLessThan(HEARTBEAT * 6 * 3);
    // Engine 0 still serves, straight.
    const sent = direct(rc).tasks;
    expect(await rc.engine(0).apply(() => "alive")).toBe("alive");
    expect(direct(rc).tasks).toBe(sent + 1);
  });
});

// The client's event loop is held while the controller learns of the death: a cluster of its own,
// whose controller does not take a held client for gone (the default --client-timeout).
describe("the direct path when an engine dies before its task's header arrives", () => {
  const lateHeader = useCluster({
    dir: tmp.dir,
    profile: "late-header",
    n: 2,
    extra: ["--heartbeat", String(HEARTBEAT)],
  });

  it("a task sent to an engine the controller already took for dead (straight, or through the controller) rejects with EngineLostError, not UnknownEngineError", async () => {
    // The launcher sees a local engine die at once; the task (or its header) may reach the controller after.
    const { rc, cluster } = lateHeader;
    const plain = await controllerOnly(cluster);
    try {
      await linksUp(rc, [0]);
      expect(await plain.engine(1).apply(() => engine.id)).toBe(1);
      for (const e of (await rc.status()).engines) process.kill(e.pid, "SIGKILL");
      // Held synchronously, these clients hear nothing (neither a link's end nor the controller's
      // notice) until the controller has removed both engines: the calls go as if they lived.
      const listed = () => {
        const out = execaSync(process.execPath, [BIN, "status", "--json", "--profile", "late-header"], {
          env: { PTCLUSTER_DIR: lateHeader.dir },
        });
        return (JSON.parse(out.stdout) as { engines: Array<{ id: number }> }).engines.some((e) => e.id < 2);
      };
      for (const deadline = Date.now() + 10_000; listed();)
        if (Date.now() > deadline) throw new Error("the controller did not remove engines 0 and 1 within 10 s");
      const sent = direct(rc).tasks;
      const straight = rc.engine(0).apply(() => "never");
      const viaController = plain.engine(1).apply(() => "never");
      for (const [ar, id] of [
        [straight, 0],
        [viaController, 1],
      ] as const) {
        const err = await failure(() => ar);
        expect(err).toBeInstanceOf(EngineLostError);
        expect((err as EngineLostError).engineId).toBe(id);
      }
      expect(direct(rc).tasks).toBe(sent + 1);
    } finally {
      await plain.close();
    }
  });
});

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`test/direct-path.test.ts: network namespace tests skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("the direct path between hosts (network namespaces)", () => {
  const ctx = useNetCluster(tmp.dir);

  it("a client that cannot reach an engine's peer endpoint works through the controller", async () => {
    // The engine binds its peer endpoint on its namespace's own loopback: out of this client's reach.
    const id = await ctx.engineOn(ctx.net.hosts[0] as NetHost, ["--peer-ip", "127.0.0.1"]);
    const before = direct(ctx.rc);
    for (let i = 0; i < 5; i++) expect(await ctx.rc.view([id]).apply((x: number) => x * 2, i)).toEqual([i * 2]);
    await waitFor(() => direct(ctx.rc).failed > before.failed, { what: "the dial to fail" });
    expect(await ctx.rc.engine(id).apply(() => engine.id)).toBe(id);
    const after = direct(ctx.rc);
    expect(after.tasks).toBe(before.tasks);
    expect(after.results).toBe(before.results);
    expect(after.viaController - before.viaController).toBe(6);
  });

  it("a link cut mid-call: the result comes through the controller, later tasks too, each run once", async () => {
    // The engine's peer endpoint is on a second address of its host, removed mid-call; its link
    // to the controller, on the first address, stays up.
    const host = ctx.net.hosts[1] as NetHost;
    const second = host.ip.replace(/\.(\d+)$/, (_, n: string) => `.${Number(n) + 100}`);
    execaSync("ip", ["-n", host.ns, "addr", "add", `${second}/24`, "dev", host.dev]);
    const id = await ctx.engineOn(host, ["--peer-ip", second]);
    await linksUp(ctx.rc, [id]);
    const work = scratchDir(tmp.dir);
    const log = join(work, "runs");
    const run = (what: string, file: string) => {
      (require("node:fs") as typeof import("node:fs")).appendFileSync(file, `${what}\n`);
      return what;
    };
    const tag = join(work, "m");
    const gate = join(work, "gate");
    const before = direct(ctx.rc);
    const ar = ctx.rc.engine(id).apply(gatedTask, gate, tag);
    await waitFor(() => existsSync(`${tag}.started`), { what: "the task to start" });
    expect(direct(ctx.rc).tasks).toBe(before.tasks + 1);
    execaSync("ip", ["-n", host.ns, "addr", "del", `${second}/24`, "dev", host.dev]);
    writeFileSync(gate, "");
    // Its result went out on the cut link: the engine gives that link up and the controller brings it.
    expect(await ar).toBe("opened");
    // Sent straight, never acknowledged: the client gives the link up and resends through the controller.
    expect(await ctx.rc.engine(id).apply(run, "after", log)).toBe("after");
    expect(await ctx.rc.engine(id).apply(run, "later", log)).toBe("later");
    expect(readFileSync(log, "utf8")).toBe("after\nlater\n");
    expect(direct(ctx.rc).failed).toBeGreaterThan(before.failed);
  });
});
