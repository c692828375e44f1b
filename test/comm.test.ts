import { afterAll, describe, expect, it } from "vitest";
import { tempClusterDir, useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

// engine.comm (issue 14): point-to-point messages between the engines of one DirectView call,
// relayed by the controller. Each test runs real engines; values are checked on the engines and here.

/** Runs on an engine: what a comm call threw, as plain data. */
declare function failureOf(p: Promise<unknown>): Promise<{ name: string; code: string | undefined; message: string }>;

const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

describe("engine.comm: ranks, send and recv", () => {
  const ctx = useCluster({ n: 3, dir: tmp.dir, profile: "comm", extra: ["--concurrency", "2"] });

  it("gives ranks in the order of the view's targets, and the group's size", async () => {
    const [a, b, c] = ctx.cluster.ids as [number, number, number];
    const got = await ctx.rc
      .view([c, a, b])
      .applySync(() => ({ id: engine.id, rank: engine.comm.rank, size: engine.comm.size }));
    expect(got).toEqual([
      { id: c, rank: 0, size: 3 },
      { id: a, rank: 1, size: 3 },
      { id: b, rank: 2, size: 3 },
    ]);
    // A one-engine view is a group of one; a load-balanced task has none.
    expect(
      await ctx.rc
        .engine(b)
        .apply(() => [engine.comm.rank, engine.comm.size])
        .get(),
    ).toEqual([0, 1]);
    expect(await ctx.rc.loadBalancedView().applySync(() => engine.comm === undefined)).toBe(true);
  });

  it("sends between ranks; a recv of one tag leaves messages of another tag waiting", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    const got = await ctx.rc.view([b, a]).applySync(async () => {
      const comm = engine.comm;
      if (comm.rank === 0) {
        await comm.send(1, "seven", { tag: 7 });
        await comm.send(1, { n: 1 }, { tag: "first" });
        await comm.send(1, { n: 2 }, { tag: "first" });
        return await comm.recv({ source: 1, tag: "reply" });
      }
      // Asked in another order than sent: each tag is its own stream, FIFO within it.
      const first1 = await comm.recv({ source: 0, tag: "first" });
      const first2 = await comm.recv({ source: 0, tag: "first" });
      const seven = await comm.recv({ source: 0, tag: 7 });
      await comm.send(0, `engine ${engine.id} got ${JSON.stringify([first1, first2, seven])}`, { tag: "reply" });
      return "sent";
    });
    expect(got).toEqual([`engine ${a} got [{"n":1},{"n":2},"seven"]`, "sent"]);
  });

  it("recv without a source takes the first message from any rank, and recvFrom says which", async () => {
    const got = await ctx.rc.view().applySync(async () => {
      const comm = engine.comm;
      if (comm.rank !== 0) {
        await comm.send(0, comm.rank * 10);
        return null;
      }
      const seen = [await comm.recvFrom(), await comm.recvFrom()];
      return seen.map((m) => [m.source, m.value, m.tag]).sort();
    });
    expect(got[0]).toEqual([
      [1, 10, 0],
      [2, 20, 0],
    ]);
  });

  it("a recv past its timeout fails with CommTimeoutError; one whose signal aborts with CommCancelledError", async () => {
    const fail = `async (p) => { try { await p; return { name: "none", code: undefined, message: "" }; } catch (e) { return { name: e.name, code: e.code, message: e.message }; } }`;
    await ctx.rc.view().execute(`globalThis.failureOf = ${fail}`);
    const got = await ctx.rc.view().applySync(async () => {
      const comm = engine.comm;
      const t0 = Date.now();
      const timedOut = await failureOf(comm.recv({ source: (comm.rank + 1) % comm.size, tag: "never", timeout: 150 }));
      const waited = Date.now() - t0;
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 20);
      const cancelled = await failureOf(comm.recv({ tag: "never", signal: ac.signal }));
      const badRank = await failureOf(comm.send(comm.size, 1));
      return { timedOut, waited, cancelled, badRank };
    });
    for (const r of got) {
      expect(r.timedOut).toMatchObject({ name: "CommTimeoutError", code: "ERR_PTC_COMM_TIMEOUT" });
      expect(r.timedOut.message).toMatch(/within 150 ms/);
      expect(r.waited).toBeGreaterThanOrEqual(140);
      expect(r.waited).toBeLessThan(2_000);
      expect(r.cancelled).toMatchObject({ name: "CommCancelledError", code: "ERR_PTC_COMM_CANCELLED" });
      expect(r.badRank).toMatchObject({ name: "CommUsageError", code: "ERR_PTC_COMM_USAGE" });
    }
  });

  it("typed arrays arrive as the same kind of typed array, with their contents", async () => {
    const got = await ctx.rc.view().applySync(async () => {
      const comm = engine.comm;
      const next = (comm.rank + 1) % comm.size;
      const prev = (comm.rank + comm.size - 1) % comm.size;
      const f64 = Float64Array.from({ length: 100_000 }, (_, i) => i * 0.5 + comm.rank);
      await comm.send(next, { f64, i32: Int32Array.of(-1, comm.rank), big: BigInt64Array.of(2n ** 40n) });
      const m = (await comm.recv({ source: prev })) as { f64: Float64Array; i32: Int32Array; big: BigInt64Array };
      return {
        kinds: [m.f64.constructor.name, m.i32.constructor.name, m.big.constructor.name],
        length: m.f64.length,
        last: m.f64[m.f64.length - 1],
        i32: [...m.i32],
        big: m.big[0],
        prev,
      };
    });
    for (const r of got) {
      expect(r.kinds).toEqual(["Float64Array", "Int32Array", "BigInt64Array"]);
      expect(r.length).toBe(100_000);
      expect(r.last).toBe(99_999 * 0.5 + r.prev);
      expect(r.i32).toEqual([-1, r.prev]);
      expect(r.big).toBe(2n ** 40n);
    }
  });

  it("two calls running at once on overlapping engines never see each other's messages", async () => {
    const [a, b, c] = ctx.cluster.ids as [number, number, number];
    // Each rank sends its call's name to every other rank, then reads size-1 messages from any
    // rank: a message of the other call would show up in the list.
    const spmd = async (name: string) => {
      const comm = engine.comm;
      for (let r = 0; r < comm.size; r++) if (r !== comm.rank) await comm.send(r, `${name}:${comm.rank}`);
      const got: unknown[] = [];
      for (let i = 0; i < comm.size - 1; i++) got.push(await comm.recv({ timeout: 10_000 }));
      return got.sort();
    };
    const [one, two] = await Promise.all([
      ctx.rc.view([a, b, c]).applySync(spmd, "one"),
      ctx.rc.view([c, b]).applySync(spmd, "two"),
    ]);
    expect(one).toEqual([
      ["one:1", "one:2"],
      ["one:0", "one:2"],
      ["one:0", "one:1"],
    ]);
    expect(two).toEqual([["two:1"], ["two:0"]]);
  });

  it("a rank whose task throws ends the recv of ranks waiting on it with CommPeerLostError, not a hang", async () => {
    const outcome = await ctx.rc
      .view()
      .apply(async () => {
        const comm = engine.comm;
        if (comm.rank === 1) throw new RangeError("rank 1 gave up");
        const t0 = Date.now();
        try {
          await comm.recv({ source: 1, timeout: 10_000 });
          return { name: "none" };
        } catch (e) {
          return { name: (e as Error).name, message: (e as Error).message, ms: Date.now() - t0 };
        }
      })
      .get()
      .then(
        () => undefined,
        (e: { results?: unknown[] }) => e.results,
      );
    const results = outcome as Array<{ name: string; message: string; ms: number }>;
    for (const r of [results[0], results[2]]) {
      expect(r).toMatchObject({ name: "CommPeerLostError" });
      expect(r?.message).toMatch(/Rank 1 \(engine \d+\) of this call failed \(RangeError: rank 1 gave up\)/);
      expect(r?.ms).toBeLessThan(5_000);
    }
    expect(results[1]).toMatchObject({ remoteName: "RangeError" });
  });

  it("a rank whose executor ends (process.exit) ends its group for the ranks waiting on it", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    const outcome = await ctx.rc
      .view([a, b])
      .apply(async () => {
        const comm = engine.comm;
        if (comm.rank === 1) process.exit(3);
        try {
          await comm.recv({ source: 1, timeout: 10_000 });
          return { name: "none" };
        } catch (e) {
          return { name: (e as Error).name, message: (e as Error).message };
        }
      })
      .get()
      .then(
        () => undefined,
        (e: { results?: unknown[] }) => e.results,
      );
    const results = outcome as Array<{ name: string; message: string }>;
    expect(results[0]).toMatchObject({ name: "CommPeerLostError" });
    expect(results[0]?.message).toMatch(new RegExp(`Rank 1 \\(engine ${b}\\) of this call ended without finishing`));
    expect(results[1]).toMatchObject({ code: "ERR_PTC_TASK_CRASHED" });
  });

  it("execute code sees engine.comm too", async () => {
    const ar = ctx.rc
      .view()
      .execute(
        "engine.comm.send((engine.comm.rank + 1) % engine.comm.size, engine.comm.rank).then(() => engine.comm.recv())",
      );
    expect((await ar.get()).sort()).toEqual([0, 1, 2]);
  });
});

describe("engine.comm: a member that dies", () => {
  const ctx = useCluster({ n: 3, dir: tmp.dir, profile: "commloss", extra: ["--heartbeat", "100"] });
  // Registered after useCluster, so it runs before the cluster stops: no engine is left frozen.
  afterAll(() => {
    for (const pid of ctx.cluster.enginePids) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        /* gone */
      }
    }
  });

  it("a frozen member is declared gone within the heartbeat window, failing the ranks waiting on it; thawed, it talks again", async () => {
    const [a, , c] = ctx.cluster.ids as [number, number, number];
    const pid = await ctx.rc.engine(c).apply(() => engine.pid);
    const ar = ctx.rc.view([a, c]).apply(async () => {
      const comm = engine.comm;
      if (comm.rank === 1) {
        await comm.send(0, "ready");
        return await new Promise((r) => setTimeout(r, 30_000)); // frozen here
      }
      try {
        await comm.recv({ source: 1 });
        await comm.recv({ source: 1, tag: "never" });
        return { name: "none" };
      } catch (e) {
        return { name: (e as Error).name };
      }
    });
    await waitForRunning(ctx, c);
    const frozenAt = Date.now();
    process.kill(pid, "SIGSTOP");
    const outcome = await ar.get().then(
      () => undefined,
      (e: { results?: unknown[] }) => e.results,
    );
    const elapsed = Date.now() - frozenAt;
    expect((outcome as Array<{ name: string }>)[0]).toEqual({ name: "CommPeerLostError" });
    // 6 missed heartbeats of 100 ms, and the controller's tick: well under the 30 s the task would wait.
    expect(elapsed).toBeLessThan(3_000);

    const back: number[] = [];
    ctx.rc.on("engine_up", (e) => back.push(e.id));
    process.kill(pid, "SIGCONT");
    await waitFor(() => back.includes(c), { what: "the thawed engine to register again", timeout: 10_000 });
    // Its return was announced: a new call with it is not failed as lost. (Its old task, still
    // holding the executor, is cancelled and forced out: the message for the new call reaches the
    // old executor first and must be posted again to its replacement.)
    const again = await ctx.rc.view([a, c]).applySync(async () => {
      const comm = engine.comm;
      if (comm.rank === 0) await comm.send(1, "welcome back");
      else return await comm.recv({ source: 0, timeout: 5_000 });
      return null;
    });
    expect(again).toEqual([null, "welcome back"]);
  });

  it("ends the recv of the ranks waiting on it with CommPeerLostError, within the heartbeat window", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    const victimPid = await ctx.rc
      .engine(b)
      .apply(() => engine.pid)
      .get();
    expect(ctx.cluster.enginePids).toContain(victimPid);
    const ar = ctx.rc.view([a, b]).apply(async () => {
      const comm = engine.comm;
      if (comm.rank === 1) {
        await comm.send(0, "waiting");
        return await new Promise(() => undefined); // killed here
      }
      try {
        await comm.recv({ source: 1 });
        await comm.recv({ source: 1, tag: "never" });
        return { name: "none" };
      } catch (e) {
        const err = e as Error & { code?: string };
        const at = Date.now();
        // Later calls of the group fail the same way (nothing will come from, or reach, rank 1).
        const later = await comm.send(1, "x").then(
          () => "sent",
          (l: Error) => l.name,
        );
        return { name: err.name, code: err.code, message: err.message, at, later };
      }
    });
    // Rank 1 sends once it runs; rank 0 has it once it got "waiting": kill rank 1's engine then.
    await waitForRunning(ctx, b);
    const killedAt = Date.now();
    process.kill(victimPid, "SIGKILL");
    const outcome = await ar.get().then(
      () => undefined,
      (e: { results?: unknown[] }) => e.results,
    );
    const [r0] = outcome as Array<Record<string, unknown>>;
    expect(r0).toMatchObject({ name: "CommPeerLostError", code: "ERR_PTC_COMM_PEER_LOST" });
    expect(r0?.later).toBe("CommPeerLostError");
    expect(String(r0?.message)).toMatch(new RegExp(`Engine ${b} \\(rank 1`));
    // 6 missed heartbeats of 100 ms at most (the launcher usually sees the exit at once).
    expect((r0?.at as number) - killedAt).toBeLessThan(1_500);
  });

  it("a call started after a member died fails its calls to that member at once, not at their timeout", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    // Engine b was killed by the test above: its task fails as lost, rank 0's comm calls fail fast.
    const outcome = await ctx.rc
      .view([a, b])
      .apply(async () => {
        const t0 = Date.now();
        try {
          await engine.comm.recv({ source: 1, timeout: 10_000 });
          return { name: "none" };
        } catch (e) {
          return { name: (e as Error).name, ms: Date.now() - t0 };
        }
      })
      .get()
      .then(
        () => undefined,
        (e: { results?: unknown[] }) => e.results,
      );
    const [r0] = outcome as Array<{ name: string; ms: number }>;
    expect(r0).toMatchObject({ name: "CommPeerLostError" });
    expect(r0?.ms).toBeLessThan(1_000);
  });
});

/** Waits until `rc.status()` shows a task running on engine `id`. */
async function waitForRunning(ctx: { rc: { status(): Promise<unknown> } }, id: number): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const s = (await ctx.rc.status()) as { engines: Array<{ id: number; running: number }> };
    if (s.engines.find((e) => e.id === id)?.running) return;
    if (Date.now() > until) throw new Error(`no task ever ran on engine ${id}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
