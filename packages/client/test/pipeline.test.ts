import { describe, expect, it } from "vitest";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  InvalidOptionError,
  PipelineUsageError,
  RemoteError,
  SerializationError,
  TaskCancelledError,
  TaskTimeoutError,
  encodeValue,
  type FailureInfo,
} from "@ptcluster/protocol";
import { pipelineOf } from "../src/pipeline/pipeline.js";
import { FakeController, turns } from "./fake-pipes.js";

const double = (x: number) => x * 2;

/** A generator that counts what was pulled from it and whether it was closed. */
function counted(n = Infinity) {
  const c = { pulled: 0, closed: false };
  function* gen() {
    try {
      for (let i = 0; i < n; i++) {
        c.pulled++;
        yield i;
      }
    } finally {
      c.closed = true;
    }
  }
  return { c, items: gen() };
}

/** Pulls `n` values from an iterator. */
async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push((await it.next()).value as T);
  return out;
}

describe("pipeline options", () => {
  const fc = new FakeController();
  it("refuses bad pipeline and stage options with named errors", () => {
    expect(() => pipelineOf(fc, [1], { maxInFlight: 0 })).toThrow(/`maxInFlight` to be a positive integer/);
    expect(() => pipelineOf(fc, [1], { onError: "ignore" as never })).toThrow(/"fail" or "skip"/);
    expect(() => pipelineOf(fc, [1], { orderd: true } as never)).toThrow(/Unknown pipeline option `orderd`/);
    expect(() => pipelineOf(fc, 5 as never)).toThrow(InvalidOptionError);
    const p = pipelineOf<number>(fc, [1]);
    expect(() => p.map(double, { concurrency: 0 })).toThrow(/`concurrency` to be a positive integer/);
    expect(() => p.map(double, { retries: -1 })).toThrow(/`retries` to be a non-negative integer/);
    expect(() => p.map(double, { timeout: 1.5 })).toThrow(InvalidOptionError);
    expect(() => p.map(double, { engines: [] })).toThrow(/non-empty array of engine ids/);
    expect(() => p.map(double, { workers: 2 } as never)).toThrow(/Unknown pipeline stage option `workers`/);
    expect(() => p.map(Math.max as never)).toThrow(/built-in or bound/);
  });

  it("describes each stage on the wire: kind, function, limits, scope", async () => {
    const fc2 = new FakeController();
    const p = pipelineOf<number>(fc2, [1])
      .map(double, { concurrency: 8, engines: [1], timeout: 50, retries: 2, scope: { k: 3 } })
      .filter((x: number) => x > 0)
      .flatMap((x: number) => [x, x]);
    const pending = p[Symbol.asyncIterator]().next();
    const { stages, scopes, onError } = fc2.last;
    expect(stages.map((s) => s.kind)).toEqual(["map", "filter", "flatMap"]);
    expect(stages[0]).toMatchObject({
      name: "double",
      concurrency: 8,
      targets: [1],
      timeout: 50,
      retries: 2,
      scope: ["k"],
    });
    expect(stages[0]?.src).toContain("x * 2");
    expect(scopes).toEqual([{ k: 3 }, undefined, undefined]);
    expect(onError).toBe("fail");
    p.abort();
    await expect(pending).rejects.toThrow(TaskCancelledError);
  });
});

describe("pipeline runs (fake controller)", () => {
  it("yields in input order whatever order items finish in, and ends after the last", async () => {
    const fc = new FakeController();
    const p = pipelineOf<number>(fc, [0, 1, 2, 3, 4]).map(double);
    const all = p.toArray();
    await turns();
    const pipe = fc.last;
    expect(pipe.total).toBe(5);
    expect([...pipe.items.keys()]).toEqual([0, 1, 2, 3, 4]);
    fc.finish(pipe, [
      [3, [6]],
      [1, []],
    ]);
    fc.finish(pipe, [
      [4, [8, 9]],
      [0, [0]],
      [2, [4]],
    ]);
    expect(await all).toEqual([0, 4, 6, 8, 9]);
    expect(pipe.closed).toBe(true);
    expect(pipe.cancelled).toBeUndefined();
  });

  it("ordered: reads item k only when k < oldest item not yet yielded + maxInFlight", async () => {
    const fc = new FakeController();
    const { c, items } = counted();
    const p = pipelineOf<number>(fc, items, { maxInFlight: 4 }).map(double);
    const it = p[Symbol.asyncIterator]();
    const first = it.next();
    await turns();
    expect(c.pulled).toBe(4);
    const pipe = fc.last;
    expect(pipe.busy).toBe(true);
    // Items 1..3 done but not 0: the window does not move.
    fc.finish(pipe, [
      [1, [2]],
      [2, [4]],
      [3, [6]],
    ]);
    await turns();
    expect(c.pulled).toBe(4);
    fc.finish(pipe, [[0, [0]]]);
    expect((await first).value).toBe(0);
    await turns();
    // Item 0 was yielded: one more may go (item 4), not yet the others (1..3 are not yielded).
    expect(c.pulled).toBe(5);
    expect(await take(it, 3)).toEqual([2, 4, 6]);
    await turns();
    expect(c.pulled).toBe(8);
    await it.return?.();
    expect(pipe.cancelled).toMatch(/stopped iterating/);
    await turns();
    expect(c.closed).toBe(true);
  });

  it("unordered: first done, first out; items sent minus items yielded stays within maxInFlight", async () => {
    const fc = new FakeController();
    const { c, items } = counted(100);
    const p = pipelineOf<number>(fc, items, { maxInFlight: 3, ordered: false }).map(double);
    const it = p[Symbol.asyncIterator]();
    const first = it.next();
    await turns();
    expect(c.pulled).toBe(3);
    const pipe = fc.last;
    fc.finish(pipe, [
      [2, [4]],
      [0, []],
    ]);
    expect((await first).value).toBe(4);
    await turns();
    // Item 2 yielded and item 0 dropped: two more read.
    expect(c.pulled).toBe(5);
    expect([...pipe.items.keys()].sort()).toEqual([1, 3, 4]);
    await it.return?.();
  });

  it("sends items in batches of at most 256 per message, flushed each turn", async () => {
    const fc = new FakeController();
    fc.auto = (v) => [v];
    const input = Array.from({ length: 1000 }, (_, i) => i);
    const out = await pipelineOf<number>(fc, input).map(double).toArray();
    expect(out).toEqual(input);
    expect(fc.last.batches.every((n) => n <= 256)).toBe(true);
    expect(fc.last.batches.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(fc.last.batches.length).toBeLessThanOrEqual(5);
    expect(fc.last.total).toBe(1000);
  });

  it("a stage failure names the stage and the item, keeping the error's class", async () => {
    const fc = new FakeController();
    const stem = (x: number) => x;
    const p = pipelineOf<number>(fc, [1, 2, 3]).map(double).map(stem, { timeout: 40 });
    const run = p.toArray();
    await turns();
    const info: FailureInfo = { name: "TypeError", message: "boom", stack: "TypeError: boom\n    at stem", item: 0 };
    const failure = encodeValue(info);
    fc.last.sink.onFailed({ type: "pipe_failed", pipe: 1, stage: 1, item: 2, engine: 3, remote: true, pf: [0] }, [
      failure,
    ]);
    const err = (await run.catch((e: unknown) => e)) as RemoteError & { stage: number; stageName: string };
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.message).toBe("Pipeline stage 1 (stem) failed on item 2: TypeError on engine 3: boom");
    expect([err.stage, err.stageName, err.item, err.engineId, err.remoteMessage]).toEqual([1, "stem", 2, 3, "boom"]);

    const p2 = pipelineOf<number>(fc, [1]).map(stem, { timeout: 40 });
    const run2 = p2.toArray();
    await turns();
    fc.last.sink.onFailed(
      {
        type: "pipe_failed",
        pipe: 2,
        stage: 0,
        item: 0,
        engine: 1,
        sysError: { code: "ERR_PTC_TASK_TIMEOUT", message: "too slow" },
      },
      [],
    );
    const err2 = (await run2.catch((e: unknown) => e)) as TaskTimeoutError;
    expect(err2).toBeInstanceOf(TaskTimeoutError);
    expect(err2.timeoutMs).toBe(40);
    expect(err2.message).toMatch(
      /^Pipeline stage 0 \(stem\) failed on item 0: The task ran longer than its timeout of 40 ms/,
    );
  });

  it("a signal cancels: pipe_cancel goes out and the run rejects with TaskCancelledError", async () => {
    const fc = new FakeController();
    const ac = new AbortController();
    const { c, items } = counted();
    const run = pipelineOf<number>(fc, items, { signal: ac.signal }).map(double).toArray();
    await turns();
    ac.abort(new Error("enough"));
    const err = (await run.catch((e: unknown) => e)) as TaskCancelledError;
    expect(err).toBeInstanceOf(TaskCancelledError);
    expect((err.cause as Error).message).toBe("enough");
    expect(fc.last.cancelled).toBeDefined();
    expect(fc.last.closed).toBe(true);
    await turns();
    expect(c.closed).toBe(true);
    // Already aborted: rejects before anything is opened.
    const before = fc.pipes.length;
    await expect(pipelineOf<number>(fc, [1], { signal: ac.signal }).map(double).toArray()).rejects.toThrow(
      TaskCancelledError,
    );
    expect(fc.pipes.length).toBe(before);
  });

  it("an empty input ends at once; an input that throws, or an item that cannot travel, fails the run and cancels", async () => {
    const fc = new FakeController();
    expect(await pipelineOf<number>(fc, []).map(double).toArray()).toEqual([]);
    expect(fc.last).toMatchObject({ total: 0, closed: true, cancelled: undefined });

    function* broken() {
      yield 1;
      throw new RangeError("the input broke");
    }
    await expect(pipelineOf<number>(fc, broken()).map(double).toArray()).rejects.toThrow(RangeError);
    expect(fc.last.cancelled).toMatch(/the input broke/);

    class Point {
      constructor(readonly x: number) {}
    }
    const err = await pipelineOf<unknown>(fc, [1, 2, new Point(3)])
      .map((v) => v)
      .toArray()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerializationError);
    expect((err as SerializationError).path).toMatch(/^items\[2\]/);
    expect(fc.last.cancelled).toBeDefined();
  });

  it("the connection ending fails the run with its error", async () => {
    const fc = new FakeController();
    const run = pipelineOf<number>(fc, [1, 2]).map(double).toArray();
    await turns();
    fc.last.sink.onFailure(new Error("client closed"));
    await expect(run).rejects.toThrow("client closed");
  });

  it("runs once; an input iterator is read by one run; a pipeline needs a stage", async () => {
    const fc = new FakeController();
    fc.auto = (v) => [v];
    const base = pipelineOf<number>(fc, [1, 2]);
    const a = base.map(double);
    expect(await a.toArray()).toEqual([1, 2]);
    expect(() => a[Symbol.asyncIterator]()).toThrow(PipelineUsageError);
    await expect(a.toArray()).rejects.toThrow(/has run already/);
    // Another branch of an array input runs from its start.
    expect(await base.filter(() => true).toArray()).toEqual([1, 2]);
    await expect(base.toArray()).rejects.toThrow(/no stage/);

    const gen = pipelineOf<number>(fc, counted(3).items);
    expect(await gen.map(double).toArray()).toEqual([0, 1, 2]);
    await expect(gen.map(double).toArray()).rejects.toThrow(/another run already read/);
  });

  it("stats are zeros with names before the controller reports, then its figures", async () => {
    const fc = new FakeController();
    const stem = (x: number) => x;
    const p = pipelineOf<number>(fc, [1])
      .map(stem)
      .filter((x) => Boolean(x));
    expect(p.stats().map((s) => [s.stage, s.kind, s.name, s.done])).toEqual([
      [0, "map", "stem", 0],
      [1, "filter", "anonymous", 0],
    ]);
    const run = p.toArray();
    await turns();
    const stats = p.stats().map((s) => ({ ...s, done: 1, itemsPerSec: 10 }));
    fc.finish(fc.last, [[0, [1]]], stats);
    await run;
    expect(p.stats()).toEqual(stats);
  });

  it("reads 200k items from a generator in constant memory", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const fc = new FakeController();
    fc.auto = (v) => [v];
    const n = 200_000;
    function* docs() {
      for (let i = 0; i < n; i++) yield { i, text: `document ${i} `.repeat(8) };
    }
    const heap: number[] = [];
    let count = 0;
    for await (const d of pipelineOf<{ i: number }>(fc, docs(), { maxInFlight: 512 }).map((x) => x)) {
      if (d.i !== count) throw new Error(`item ${count} came as ${d.i}`);
      count++;
      if (count === 20_000 || count === n - 1) {
        gc();
        heap.push(process.memoryUsage().heapUsed);
      }
    }
    expect(count).toBe(n);
    // Retaining the 180k items in between would take tens of MB.
    expect((heap[1] as number) - (heap[0] as number)).toBeLessThan(6 * 2 ** 20);
  }, 20_000);
});
