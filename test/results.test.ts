import { describe, expect, it } from "vitest";
import { strict as assert } from "node:assert";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CompositeError,
  RemoteError,
  ResultTimeoutError,
  StreamConsumedError,
  TaskCancelledError,
  type MapResult,
} from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { countingGenerator, filesStartingWith, holdUntilCancelled, probeFiles, scratchDir } from "./helpers/lb.js";
import { collect, range, waitFor } from "./helpers/wait.js";

// Names that tasks find on the engines through `scope`; declared for the type checker only.
declare const wd: string;
declare const slowEngine: number;

/** Runs on an engine: item `x` returns `x * 10` once the file `${wd}/gate` exists (20 s at most). */
const gatedItem = async (x: number): Promise<number> => {
  const fs = require("node:fs") as typeof import("node:fs");
  const until = Date.now() + 20_000;
  while (!fs.existsSync(`${wd}/gate`)) {
    if (Date.now() > until) throw new Error("the gate never opened");
    await new Promise((r) => setTimeout(r, 5));
  }
  return x * 10;
};

/** Runs on an engine: the last item (`last`) waits for `${wd}/gate`; the others return at once. */
const lastGated = async (x: number, last: number): Promise<number> => {
  const fs = require("node:fs") as typeof import("node:fs");
  const until = Date.now() + 20_000;
  while (x === last && !fs.existsSync(`${wd}/gate`)) {
    if (Date.now() > until) throw new Error("the gate never opened");
    await new Promise((r) => setTimeout(r, 5));
  }
  return x * 10;
};

/** Runs on an engine: item 3 fails, the others return their double. */
const failsOn3 = (x: number): number => {
  if (x === 3) throw new Error(`bad item ${x}`);
  return x * 2;
};

const ctx = useCluster({ n: 2 });
const work = (name: string) => scratchDir(ctx.dir, `${name}-`);
const open = (dir: string) => writeFileSync(join(dir, "gate"), "");

describe("map results are full promises with the AsyncResult methods", () => {
  it("lb.map on success: then/catch/finally, get(timeout), ready, wait, successful, progress, metadata", async () => {
    const dir = work("lb-ok");
    const m = ctx.rc.loadBalancedView().map(gatedItem, range(6), { chunkSize: 1, scope: { wd: dir } });
    expect(m.ready()).toBe(false);
    expect(m.successful()).toBeUndefined();
    expect(m.progress).toBe(0);
    expect(m.total).toBe(6);
    const late = await m.get(50).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(late).toBeInstanceOf(ResultTimeoutError);
    expect(await m.wait(20)).toBe(false);
    let finallyRan = false;
    const viaFinally = m.finally(() => (finallyRan = true));
    const viaCatch = m.catch(() => "never");
    open(dir);
    expect(await m.wait()).toBe(true);
    expect(m.ready()).toBe(true);
    expect(m.successful()).toBe(true);
    expect(m.progress).toBe(6);
    expect(m.metadata).toHaveLength(6);
    expect(m.metadata.every((md) => md.status === "ok")).toBe(true);
    expect(m.taskIds).toHaveLength(6);
    const expected = range(6).map((x) => x * 10);
    expect(await m.get(1_000)).toEqual(expected);
    expect(await viaFinally).toEqual(expected);
    expect(finallyRan).toBe(true);
    expect(await viaCatch).toEqual(expected);
    expect(await m.then((v) => v.length)).toBe(6);
    expect(await Promise.all([m, ctx.rc.view().map((x: number) => -x, [1, 2, 3])])).toEqual([expected, [-1, -2, -3]]);
    expect(Object.prototype.toString.call(m)).toBe("[object MapResult]");
  });

  it("lb.map with a failing item: rejects for await, catch, finally, get, assert.rejects and expect().rejects; ready and not successful", async () => {
    const lb = ctx.rc.loadBalancedView();
    const m = lb.map(failsOn3, range(8), { chunkSize: 1 });
    await assert.rejects(m, (err: unknown) => err instanceof RemoteError && /bad item 3/.test(err.message));
    await expect(m).rejects.toThrow(/bad item 3/);
    await expect(m).rejects.toBeInstanceOf(RemoteError);
    const caught = await m.catch((e: unknown) => e);
    expect(caught).toBeInstanceOf(RemoteError);
    expect((caught as RemoteError).item).toBe(3);
    let finallyRan = false;
    await expect(m.finally(() => (finallyRan = true))).rejects.toBeInstanceOf(RemoteError);
    expect(finallyRan).toBe(true);
    await expect(m.get(5_000)).rejects.toBeInstanceOf(RemoteError);
    expect(await m.wait()).toBe(true);
    expect(m.ready()).toBe(true);
    expect(m.successful()).toBe(false);
    // A map that fails is not awaited at all: no unhandled rejection (the run fails on one).
    lb.map(failsOn3, range(8));
    await assert.rejects(lb.map(failsOn3, range(8)), RemoteError);
  });

  it("DirectView and EngineView maps reject for assert.rejects and expect().rejects", async () => {
    const dv = ctx.rc.view();
    await assert.rejects(dv.map(failsOn3, range(8)), CompositeError);
    const err = await dv.map(failsOn3, range(8)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CompositeError);
    expect((err as CompositeError).errors).toHaveLength(1);
    expect((err as CompositeError).errors[0]?.message).toMatch(/bad item 3/);
    await expect(dv.map(failsOn3, range(8))).rejects.toBeInstanceOf(CompositeError);
    const one = ctx.rc.engine(ctx.rc.ids[0]!);
    await assert.rejects(one.map(failsOn3, range(8)), RemoteError);
    await expect(one.map(failsOn3, range(8))).rejects.toThrow(/bad item 3/);
    const ok = dv.map((x: number) => x + 1, range(5));
    expect(await ok.finally(() => undefined)).toEqual(range(5).map((x) => x + 1));
    expect(ok.successful()).toBe(true);
    expect(ok.progress).toBe(5);
    expect(ok.total).toBe(5);
    expect(ok.metadata).toHaveLength(2);
  });
});

describe("DirectView map iterates in input order as blocks arrive", () => {
  const blockGated = async (x: number): Promise<number> => {
    const fs = require("node:fs") as typeof import("node:fs");
    const until = Date.now() + 20_000;
    while (engine.id === slowEngine && !fs.existsSync(`${wd}/gate`)) {
      if (Date.now() > until) throw new Error("the gate never opened");
      await new Promise((r) => setTimeout(r, 5));
    }
    return x * 10;
  };

  it("the first block is yielded while the second runs", async () => {
    const [first, second] = ctx.rc.ids as [number, number];
    const dir = work("dv-first");
    const m = ctx.rc
      .view([first, second])
      .with({ scope: { wd: dir, slowEngine: second } })
      .map(blockGated, range(6));
    const it = m[Symbol.asyncIterator]();
    for (const x of [0, 1, 2]) expect(await it.next()).toEqual({ done: false, value: x * 10 });
    expect(m.ready()).toBe(false);
    open(dir);
    const rest: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest).toEqual([30, 40, 50]);
  });

  it("a later block that arrives first waits for the one before it", async () => {
    const [first, second] = ctx.rc.ids as [number, number];
    const dir = work("dv-later");
    const m = ctx.rc
      .view([first, second])
      .with({ scope: { wd: dir, slowEngine: first } })
      .map(blockGated, range(6));
    const seen: number[] = [];
    const loop = (async () => {
      for await (const v of m) seen.push(v);
    })();
    await waitFor(() => m.progress === 3, { what: "the second block" });
    // One more round trip: anything the loop could yield has been yielded by then.
    await ctx.rc.queueStatus();
    expect(seen).toEqual([]);
    open(dir);
    await loop;
    expect(seen).toEqual(range(6).map((x) => x * 10));
  });
});

describe("a map's result, on either view, is awaitable and iterable as often as wanted", () => {
  const views = [
    // `early`: items an iterator can get before the last is let through (a DirectView delivers whole blocks).
    {
      name: "lb.map",
      early: (n: number) => n - 1,
      map: (dir: string, n: number) =>
        ctx.rc.loadBalancedView().map(
          lastGated,
          range(n),
          range(n).map(() => n - 1),
          { chunkSize: 1, scope: { wd: dir } },
        ),
    },
    {
      name: "dv.map",
      early: (n: number) => n / 2,
      map: (dir: string, n: number) =>
        ctx.rc
          .view()
          .with({ scope: { wd: dir } })
          .map(
            lastGated,
            range(n),
            range(n).map(() => n - 1),
          ),
    },
  ];
  for (const v of views) {
    it(`${v.name}: two iterators, one started late, await then iterate, iterate twice, iterate after completion`, async () => {
      const dir = work(v.name);
      const N = 10;
      const expected = range(N).map((x) => x * 10);
      const m: MapResult<number> = v.map(dir, N);
      // The first iterator takes every item it can before the gated last one.
      const early = v.early(N);
      const first = m[Symbol.asyncIterator]();
      const got: number[] = [];
      for (let k = 0; k < early; k++) {
        const r = await first.next();
        expect(r.done).toBe(false);
        got.push(r.value as number);
      }
      expect(got).toEqual(expected.slice(0, early));
      expect(m.ready()).toBe(false);
      // A second iterator, created now, replays what arrived so far and then waits with the first.
      const secondDone = collect(m);
      const firstNext = first.next();
      open(dir);
      expect(await firstNext).toEqual({ done: false, value: expected[early] });
      for (const x of expected.slice(early + 1)) expect(await first.next()).toEqual({ done: false, value: x });
      expect(await first.next()).toEqual({ done: true, value: undefined });
      expect(await secondDone).toEqual(expected);
      // Await, then iterate (twice), after completion: every item, in input order, each time.
      expect(await m).toEqual(expected);
      expect(await collect(m)).toEqual(expected);
      expect(await collect(m)).toEqual(expected);
      const [a, b] = await Promise.all([collect(m), collect(m)]);
      expect(a).toEqual(expected);
      expect(b).toEqual(expected);
      expect(await m).toEqual(expected);
      expect(m.successful()).toBe(true);
    });
  }

  it("lb.map with ordered: false iterates in completion order, the same order every time; await stays in input order", async () => {
    const dir = work("unordered");
    const N = 8;
    // Item 0 is the gated one: it completes last, after every other item.
    const firstGated = async (x: number): Promise<number> => {
      const fs = require("node:fs") as typeof import("node:fs");
      const until = Date.now() + 20_000;
      while (x === 0 && !fs.existsSync(`${wd}/gate`)) {
        if (Date.now() > until) throw new Error("the gate never opened");
        await new Promise((r) => setTimeout(r, 5));
      }
      return x * 10;
    };
    const m = ctx.rc.loadBalancedView().map(firstGated, range(N), { chunkSize: 1, ordered: false, scope: { wd: dir } });
    const it = m[Symbol.asyncIterator]();
    const early: number[] = [];
    for (let k = 0; k < N - 1; k++) early.push((await it.next()).value as number);
    expect(early.sort((x, y) => x - y)).toEqual(
      range(N)
        .slice(1)
        .map((x) => x * 10),
    );
    open(dir);
    expect(await it.next()).toEqual({ done: false, value: 0 });
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(await m).toEqual(range(N).map((x) => x * 10));
    const once = await collect(m);
    expect(once.at(-1)).toBe(0);
    expect(await collect(m)).toEqual(once);
  });
});

describe("breaking out of a loop over a map cancels what is left", () => {
  async function expectIdle(dir: string): Promise<void> {
    // A probe through each engine runs after everything sent to it before: cancelled work is gone by then.
    for (const id of ctx.rc.ids) expect(await ctx.rc.engine(id).apply(probeFiles, dir, "ran-")).toEqual([]);
    expect(filesStartingWith(dir, "ran-")).toEqual([]);
    // The controller's records follow off the critical path: a probe's result comes straight from
    // its engine's executor, the cancelled tasks' ends through the supervisor and the controller.
    const qs = await waitFor(
      async () => {
        const q = await ctx.rc.queueStatus();
        return ctx.rc.ids.every((id) => q.engines[id]?.running === 0) ? q : undefined;
      },
      { what: "the controller to have the cancelled tasks' ends" },
    );
    expect(qs.unassigned).toBe(0);
    for (const id of ctx.rc.ids) expect(qs.engines[id]).toMatchObject({ queued: 0, running: 0 });
  }

  it("lb.map: queued items never run, running ones see engine.signal; the result rejects with TaskCancelledError", async () => {
    const dir = work("lb-break");
    const m = ctx.rc.loadBalancedView().map(holdUntilCancelled, range(20), { chunkSize: 1, scope: { wd: dir } });
    const seen: number[] = [];
    for await (const v of m) {
      seen.push(v);
      await waitFor(() => existsSync(join(dir, "busy-1")) && existsSync(join(dir, "busy-2")), {
        what: "items 1 and 2 to start",
      });
      break;
    }
    expect(seen).toEqual([0]);
    await expect(m).rejects.toBeInstanceOf(TaskCancelledError);
    expect(m.successful()).toBe(false);
    await expectIdle(dir);
    expect(filesStartingWith(dir, "cleanup-")).toEqual(["cleanup-1", "cleanup-2"]);
  });

  it("dv.map: the rest of a running block stops between items; the result rejects", async () => {
    const dir = work("dv-break");
    const [first, second] = ctx.rc.ids as [number, number];
    // Blocks: [-2, -1, 0] on the first engine; [1, 3, 4] on the second (item 1 holds it until cancelled).
    const items = [-2, -1, 0, 1, 3, 4];
    const m = ctx.rc
      .view([first, second])
      .with({ scope: { wd: dir } })
      .map(holdUntilCancelled, items);
    for await (const v of m) {
      expect(v).toBe(-2);
      await waitFor(() => existsSync(join(dir, "busy-1")), { what: "item 1 to start" });
      break;
    }
    const err = await m.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CompositeError);
    expect((err as CompositeError).errors.map((e) => (e as TaskCancelledError).code)).toEqual([
      "ERR_PTC_TASK_CANCELLED",
    ]);
    await expectIdle(dir);
    expect(filesStartingWith(dir, "cleanup-")).toEqual(["cleanup-1"]);
  });

  it("breaking out after the map finished cancels nothing", async () => {
    const m = ctx.rc.loadBalancedView().map((x: number) => x, range(5));
    await m;
    for await (const _ of m) break;
    expect(m.successful()).toBe(true);
    expect(await m).toEqual(range(5));
  });
});

describe("a map runs to completion on its own", () => {
  it("lb.map over a lazy generator finishes with nobody awaiting or iterating it, maxInFlight bounding what is in flight", async () => {
    const { gen, stats } = countingGenerator(300);
    const maxInFlight = 8;
    const m = ctx.rc.loadBalancedView().map((x: number) => x * 2, gen, { maxInFlight });
    // Waits on the map's own state, never on the result: the map must get there by itself.
    const inFlight: number[] = [];
    await waitFor(
      () => {
        inFlight.push(stats.pulled - m.progress);
        return m.ready();
      },
      { what: "the map to finish unobserved", interval: 2 },
    );
    expect(stats.finished).toBe(true);
    expect(m.progress).toBe(300);
    expect(m.total).toBe(300);
    expect(m.successful()).toBe(true);
    expect(Math.max(...inFlight)).toBeLessThanOrEqual(maxInFlight);
    expect(await m).toEqual(range(300).map((x) => x * 2));
  });

  it("dv.map finishes with nobody awaiting it", async () => {
    const m = ctx.rc.view().map((x: number) => x + 1, range(9));
    await waitFor(() => m.ready(), { what: "the map to finish unobserved" });
    expect(m.progress).toBe(9);
    expect(await m).toEqual(range(9).map((x) => x + 1));
  });
});

describe("imap is the one-pass stream", () => {
  it("a second iteration throws StreamConsumedError, during or after the first", async () => {
    const s = ctx.rc.loadBalancedView().imap((x: number) => x * 3, range(20));
    const it = s[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ done: false, value: 0 });
    expect(() => s[Symbol.asyncIterator]()).toThrow(StreamConsumedError);
    const rest: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest).toEqual(
      range(20)
        .slice(1)
        .map((x) => x * 3),
    );
    const err = await collect(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamConsumedError);
    expect((err as StreamConsumedError).code).toBe("ERR_PTC_STREAM_CONSUMED");
    expect((err as Error).message).toMatch(/lb\.map/);
    expect("then" in s).toBe(false);
  });
});
