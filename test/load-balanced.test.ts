import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RemoteError, TaskCancelledError, TaskTimeoutError, type Client, type QueueStatus } from "@ptcluster/client";
import { startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { collect, range, waitFor } from "./helpers/wait.js";
import {
  countingAsyncGenerator,
  countingGenerator,
  failure,
  filesStartingWith,
  gatedTask,
  holdUntilCancelled,
  lines,
  markerTask,
  probeFiles,
  reapLeftovers,
  scratchDir,
  startedOn,
} from "./helpers/lb.js";

// Names that tasks find on the engines, through `scope` or `push`; declared for the type checker only.
declare const wd: string;
declare const pushedMark: number;

function* gen(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

async function* agen(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) {
    // A real macrotask now and then, as an async source (a file, a socket) would have.
    if (i % 16 === 0) await new Promise((r) => setImmediate(r));
    yield i;
  }
}

/** Every engine's counts are non-negative integers, and `unassigned` too. */
function expectQueueStatusShape(qs: QueueStatus, ids: number[]): void {
  expect(Object.keys(qs).sort()).toEqual(["engines", "unassigned"]);
  expect(
    Object.keys(qs.engines)
      .map(Number)
      .sort((a, b) => a - b),
  ).toEqual(ids);
  for (const id of ids) {
    const e = qs.engines[id]!;
    expect(Object.keys(e).sort()).toEqual(["completed", "queued", "running"]);
    for (const v of Object.values(e)) {
      expect(Number.isInteger(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
    }
  }
  expect(Number.isInteger(qs.unassigned)).toBe(true);
  expect(qs.unassigned).toBeGreaterThanOrEqual(0);
}

const tmp = tempClusterDir();

afterAll(async () => {
  const left = await reapLeftovers(tmp.dir);
  tmp.cleanup();
  expect(left).toEqual([]);
});

describe("load-balanced view on a real 2-engine cluster", () => {
  let cluster: TestCluster;
  let rc: Client;
  let ids: number[];

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 2 });
    rc = await cluster.connect();
    ids = rc.ids;
  });

  afterAll(async () => {
    await rc?.close();
    await cluster?.stop();
  });

  /** A fresh directory for one test's marker files, shared with the engines (same machine). */
  const work = (name: string) => scratchDir(tmp.dir, `${name}-`);

  /** A burst of quick tasks on every engine, as a real session has before a mixed workload. */
  const warmUp = async () => {
    for (const id of ids)
      expect(await Promise.all(range(40).map((k) => rc.engine(id).apply((x: number) => x, k)))).toEqual(range(40));
  };

  it("map and imap (ordered and unordered) over arrays, generators and async generators equal a serial run", async () => {
    expect(ids).toEqual([0, 1]);
    const f = (x: number) => (x * x - 3 * x + 1) % 1009;
    const N = 300;
    const serial = range(N).map(f);
    const lb = rc.loadBalancedView();
    const byValue = (a: number, b: number) => a - b;
    const sortedSerial = [...serial].sort(byValue);

    expect(await lb.map(f, range(N))).toEqual(serial);
    expect(await lb.map(f, gen(N))).toEqual(serial);
    expect(await lb.map(f, agen(N))).toEqual(serial);
    expect(await lb.map(f, new Set(range(N)))).toEqual(serial);

    expect(await collect(lb.imap(f, range(N)))).toEqual(serial);
    expect(await collect(lb.imap(f, gen(N)))).toEqual(serial);
    expect(await collect(lb.imap(f, agen(N)))).toEqual(serial);
    expect(await collect(lb.imap(f, agen(N), { ordered: true, chunkSize: 3 }))).toEqual(serial);

    // Unordered: the same results, each paired with its own input.
    const pair = (x: number): [number, number] => [x, (x * x - 3 * x + 1) % 1009];
    const serialPairs = range(N).map(pair);
    const byInput = (a: [number, number], b: [number, number]) => a[0] - b[0];
    for (const src of [() => range(N), () => gen(N), () => agen(N)]) {
      const unordered = await collect(lb.imap(pair, src(), { ordered: false }));
      expect(unordered).toHaveLength(N);
      expect(unordered.sort(byInput)).toEqual(serialPairs);
      const unorderedChunks = await collect(lb.imap(f, src(), { ordered: false, chunkSize: 1 }));
      expect(unorderedChunks.sort(byValue)).toEqual(sortedSerial);
    }
    // A map result is also async-iterable: results in input order.
    expect(await collect(lb.map(f, gen(N)))).toEqual(serial);
    // Empty inputs.
    expect(await lb.map(f, [])).toEqual([]);
    expect(await lb.map(f, gen(0))).toEqual([]);
    expect(await collect(lb.imap(f, agen(0), { ordered: false }))).toEqual([]);
  });

  it("starmap and several argument lists (zipped to the shortest, like Python's map) equal a serial run", async () => {
    const lb = rc.loadBalancedView();
    const pow = (a: number, b: number) => a ** b % 1000;
    const tuples: Array<[number, number]> = range(120).map((i) => [i % 13, i % 5]);
    const serial = tuples.map(([a, b]) => pow(a, b));
    expect(await lb.starmap(pow, tuples)).toEqual(serial);
    expect(
      await lb.starmap(
        pow,
        (function* () {
          yield* tuples;
        })(),
      ),
    ).toEqual(serial);
    expect(
      await lb.starmap(
        pow,
        (async function* () {
          yield* tuples;
        })(),
        { chunkSize: 7 },
      ),
    ).toEqual(serial);

    const join3 = (a: number, b: string, c: boolean) => `${a}:${b}:${c}`;
    const letters = "abcdefghij".split("");
    const flags = range(8).map((i) => i % 3 === 0);
    const zipped = range(8).map((i) => join3(i, letters[i]!, flags[i]!));
    expect(await lb.map(join3, range(50), letters, flags)).toEqual(zipped);
    expect(await lb.map(join3, gen(50), letters, flags, { chunkSize: 2 })).toEqual(zipped);
    expect(
      await lb.map(
        join3,
        agen(50),
        letters,
        (async function* () {
          yield* flags;
        })(),
      ),
    ).toEqual(zipped);
    const unordered = await collect(
      lb.imap((a: number, b: number, c: boolean) => `${a}:${b}:${c}`, range(8), agen(10), flags, { ordered: false }),
    );
    expect(unordered.sort()).toEqual(
      range(8)
        .map((i) => `${i}:${i}:${flags[i]}`)
        .sort(),
    );
  });

  it("imap with ordered: false yields results as they complete; ordered waits for input order", async () => {
    const dir = work("order");
    // Item 0 holds its engine until the test opens its gate; the others are quick.
    const slowFirst = async (i: number) => {
      const fs = require("node:fs") as typeof import("node:fs");
      if (i === 0) {
        const until = Date.now() + 8_000;
        while (!fs.existsSync(`${wd}/gate`)) {
          if (Date.now() > until) throw new Error("gate never opened");
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      return i;
    };
    const N = 12;
    const lb = rc.loadBalancedView();
    await warmUp();
    const got: number[] = [];
    for await (const v of lb.imap(slowFirst, range(N), { ordered: false, chunkSize: 1, scope: { wd: dir } })) {
      got.push(v);
      if (got.length === N - 1) writeFileSync(join(dir, "gate"), "");
    }
    expect(got.slice(0, N - 1).sort((a, b) => a - b)).toEqual(range(N).slice(1));
    expect(got[N - 1]).toBe(0);

    // Ordered: nothing is yielded before item 0, though the rest finish first.
    const dir2 = work("order2");
    const run = lb.imap(slowFirst, range(N), { chunkSize: 1, scope: { wd: dir2 } });
    const it = run[Symbol.asyncIterator]();
    const first = it.next();
    await waitFor(() => run.progress === N - 1, { what: "every item but the first to finish" });
    writeFileSync(join(dir2, "gate"), "");
    expect(await first).toEqual({ done: false, value: 0 });
    const rest: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest).toEqual(range(N).slice(1));
  });

  it('chunkSize: a fixed size makes tasks of that many consecutive items; "auto" with a known length amortises tiny items over both engines', async () => {
    const lb = rc.loadBalancedView();
    const echo = (x: number) => {
      console.log(x);
      return x + 1;
    };
    const fixed = lb.map(echo, range(50), { chunkSize: 7 });
    expect(await fixed).toEqual(range(50).map((x) => x + 1));
    expect(fixed.metadata).toHaveLength(8);
    const chunks = fixed.metadata
      .map((m) => m.stdout.split("\n").filter(Boolean).map(Number))
      .sort((a, b) => a[0]! - b[0]!);
    expect(chunks.map((c) => c.length)).toEqual([7, 7, 7, 7, 7, 7, 7, 1]);
    chunks.forEach((c, k) => expect(c).toEqual(range(c.length).map((j) => 7 * k + j)));

    // Fixed size over a generator (length unknown).
    const fixedGen = lb.map(echo, gen(50), { chunkSize: 10 });
    expect(await fixedGen).toEqual(range(50).map((x) => x + 1));
    expect(fixedGen.metadata).toHaveLength(5);

    // "auto" (the default) with a known length: far fewer tasks than items, several per engine, both engines used.
    const noop = (x: number) => x;
    const auto = lb.map(noop, range(4000));
    expect(await auto).toEqual(range(4000));
    expect(auto.metadata.length).toBeLessThanOrEqual(4000 / 16);
    expect(auto.metadata.length).toBeGreaterThanOrEqual(2 * ids.length);
    expect(new Set(auto.metadata.map((m) => m.engineId))).toEqual(new Set(ids));
  });

  it('chunkSize "auto" also amortises tiny items from an input of unknown length (a generator)', async () => {
    const lb = rc.loadBalancedView();
    const noop = (x: number) => x;
    // Several runs: how many items are read before the first result comes back varies from run to run.
    for (const source of [() => agen(4000), () => gen(4000), () => gen(4000), () => gen(4000)]) {
      const autoGen = lb.map(noop, source());
      expect(await autoGen).toEqual(range(4000));
      // At least 4 items per task on average: not one message per item.
      expect(autoGen.metadata.length).toBeLessThanOrEqual(4000 / 4);
    }
  });

  it("maxInFlight bounds how far a lazy generator is read ahead of consumption", async () => {
    const lb = rc.loadBalancedView();
    const sq = (x: number) => x * x;
    for (const maxInFlight of [1, 8, 32]) {
      const { gen: g, stats } = countingGenerator(300);
      let consumed = 0;
      let maxAhead = 0;
      for await (const v of lb.imap(sq, g, { maxInFlight })) {
        expect(v).toBe(consumed * consumed);
        consumed++;
        maxAhead = Math.max(maxAhead, stats.pulled - consumed);
        expect(stats.pulled - consumed).toBeLessThanOrEqual(maxInFlight);
      }
      expect(consumed).toBe(300);
      expect(stats.finished).toBe(true);
      // It does read ahead (that is how engines stay busy), up to the bound.
      if (maxInFlight > 1) expect(maxAhead).toBeGreaterThan(1);
    }

    // A stalled consumer of an endless generator: reading stops at exactly consumed + maxInFlight.
    for (const source of [
      countingGenerator(Number.POSITIVE_INFINITY),
      countingAsyncGenerator(Number.POSITIVE_INFINITY),
    ]) {
      const { gen: g, stats } = source;
      const run = lb.imap(sq, g, { maxInFlight: 16 });
      const it = run[Symbol.asyncIterator]();
      for (let k = 0; k < 5; k++) expect(await it.next()).toEqual({ done: false, value: k * k });
      await waitFor(() => stats.pulled >= 5 + 16 && run.progress === stats.pulled, {
        what: "the window to fill and drain",
      });
      // A round trip to the controller lets any late result and refill happen before looking again.
      const qs = await rc.queueStatus();
      expect(qs.unassigned).toBe(0);
      expect(stats.pulled).toBe(5 + 16);
      expect(run.progress).toBe(5 + 16);
      await it.return?.();
      await waitFor(() => stats.closed, { what: "the generator's finally block" });
      expect(stats.finished).toBe(false);
    }
  });

  it("breaking out of `for await` over imap closes the generator and cancels the rest: queued tasks never run, running ones see engine.signal", async () => {
    const dir = work("break");
    const { gen: g, stats } = countingGenerator(Number.POSITIVE_INFINITY);
    const lb = rc.loadBalancedView();
    const run = lb.imap(holdUntilCancelled, g, { chunkSize: 1, maxInFlight: 20, scope: { wd: dir } });
    const seen: number[] = [];
    for await (const v of run) {
      seen.push(v);
      // Both engines are now held by items 1 and 2; items 3… wait behind them.
      await waitFor(() => existsSync(join(dir, "busy-1")) && existsSync(join(dir, "busy-2")), {
        what: "items 1 and 2 to start",
      });
      break;
    }
    expect(seen).toEqual([0]);
    await waitFor(() => stats.closed, { what: "the generator's finally block" });
    expect(stats.pulled).toBeLessThanOrEqual(21);
    // A probe through each engine runs after everything sent to it before: by then cancelled work is gone for good.
    for (const id of ids) expect(await rc.engine(id).apply(probeFiles, dir, "ran-")).toEqual([]);
    expect(filesStartingWith(dir, "ran-")).toEqual([]);
    expect(filesStartingWith(dir, "cleanup-")).toEqual(["cleanup-1", "cleanup-2"]);
    const qs = await rc.queueStatus();
    expect(qs.unassigned).toBe(0);
    for (const id of ids) expect(qs.engines[id]).toMatchObject({ queued: 0, running: 0 });
  });

  it("uneven task times keep every engine busy: short tasks all finish on the other engine while one long task runs", async () => {
    const dir = work("uneven");
    const N = 30;
    const task = async (i: number, n: number) => {
      const fs = require("node:fs") as typeof import("node:fs");
      const start = Date.now();
      if (i === 0) {
        // The long task lasts until every short one has finished; it fails if they queue behind it.
        const until = Date.now() + 8_000;
        while (fs.readdirSync(wd).filter((f) => f.startsWith("short-")).length < n - 1) {
          if (Date.now() > until) throw new Error("short tasks waited behind the long one");
          await new Promise((r) => setTimeout(r, 5));
        }
      } else {
        await new Promise((r) => setTimeout(r, 10));
        fs.writeFileSync(`${wd}/short-${i}`, String(engine.id));
      }
      return { i, engine: engine.id, start, end: Date.now() };
    };
    const lb = rc.loadBalancedView();
    await warmUp();
    const out = await lb.map(
      task,
      range(N),
      range(N).map(() => N),
      { chunkSize: 1, scope: { wd: dir } },
    );
    expect(out.map((r) => r.i)).toEqual(range(N));
    const long = out[0]!;
    const shorts = out.slice(1);
    for (const s of shorts) {
      expect(s.engine).not.toBe(long.engine);
      expect(s.end).toBeLessThanOrEqual(long.end);
    }
  });

  it("tasks prefetched by a busy engine are taken back when another engine falls idle", async () => {
    const dir = work("prefetch");
    const lb = rc.loadBalancedView();
    const gateA = join(dir, "gate-a");
    const gateB = join(dir, "gate-b");
    const blockA = lb.apply(gatedTask, gateA, join(dir, "a"));
    await waitFor(() => startedOn(join(dir, "a")) !== undefined, { what: "blocker A to start" });
    const blockB = lb.apply(gatedTask, gateB, join(dir, "b"));
    await waitFor(() => startedOn(join(dir, "b")) !== undefined, { what: "blocker B to start" });
    const engA = startedOn(join(dir, "a"))!;
    const engB = startedOn(join(dir, "b"))!;
    expect(engB).not.toBe(engA);
    // 20 short tasks in one batch, while both engines are busy: some are prefetched by each engine.
    const shorts = range(20).map((k) => lb.apply(markerTask, join(dir, `short-${k}`)));
    const before = await waitFor(
      async () => {
        const qs = await rc.queueStatus();
        const waiting = qs.unassigned + qs.engines[engA]!.queued + qs.engines[engB]!.queued;
        return waiting === 20 && qs.engines[engA]!.queued > 0 ? qs : undefined;
      },
      { what: "the short tasks to be placed" },
    );
    expect(before.engines[engA]).toMatchObject({ running: 1 });
    expect(before.engines[engB]).toMatchObject({ running: 1 });
    // Free B only: it runs its own share, then takes back what A prefetched and has not started.
    writeFileSync(gateB, "");
    expect(await blockB).toBe("opened");
    const ran = await Promise.all(shorts);
    expect(ran).toEqual(range(20).map(() => engB));
    const after = await rc.queueStatus();
    expect(after.engines[engA]).toMatchObject({ running: 1, queued: 0 });
    expect(after.unassigned).toBe(0);
    writeFileSync(gateA, "");
    expect(await blockA).toBe("opened");
    expect(blockA.metadata[0]!.engineId).toBe(engA);
  });

  it("a view restricted to targets [0] runs only on engine 0", async () => {
    const lb0 = rc.loadBalancedView([0]);
    expect(lb0.targets).toEqual([0]);
    const where = await lb0.map((_: number) => engine.id, range(40), { chunkSize: 1 });
    expect(where).toEqual(range(40).map(() => 0));
    expect(await lb0.apply(() => engine.id)).toBe(0);
    const lb1 = rc.loadBalancedView([1]);
    expect(await lb1.map((_: number) => engine.id, gen(20), { chunkSize: 3 })).toEqual(range(20).map(() => 1));
  });

  it("timeout stops a spinning task with TaskTimeoutError; the engine stays registered, resets its namespace, tells the client, and takes the next task", async () => {
    const resets: Array<{ id: number; reason: string }> = [];
    const onReset = (r: { id: number; reason: string }) => resets.push(r);
    rc.on("engine_reset", onReset);
    try {
      await rc.view().push({ pushedMark: 42 });
      const pid0 = rc.engineInfo(0)!.pid;
      const lb0 = rc.loadBalancedView([0]);
      const spin = lb0.with({ timeout: 300 }).apply(() => {
        for (;;) {
          /* spins: never yields to the event loop */
        }
      });
      const next = lb0.apply(() => ({ id: engine.id, pid: process.pid, mark: typeof pushedMark }));
      const err = await failure(() => spin);
      expect(err).toBeInstanceOf(TaskTimeoutError);
      const e = err as TaskTimeoutError;
      expect(e.code).toBe("ERR_PTC_TASK_TIMEOUT");
      expect(e.engineId).toBe(0);
      expect(e.timeoutMs).toBe(300);
      expect(e.message).toContain("300 ms");
      expect(spin.metadata[0]).toMatchObject({ engineId: 0, status: "error" });
      expect(await next).toEqual({ id: 0, pid: pid0, mark: "undefined" });
      await waitFor(() => resets.some((r) => r.id === 0), { what: "an engine_reset event for engine 0" });
      expect(resets.every((r) => r.id === 0 && typeof r.reason === "string")).toBe(true);
      expect(rc.ids).toEqual(ids);
      expect(rc.engineInfo(0)!.pid).toBe(pid0);
      expect(await rc.engine(0).apply(() => typeof pushedMark)).toBe("undefined");
      expect(await rc.engine(1).apply(() => typeof pushedMark)).toBe("number");
    } finally {
      rc.off("engine_reset", onReset);
    }
  });

  it("timeout counts from the task's start: time spent queued behind another task does not count", async () => {
    const lb0 = rc.loadBalancedView([0]);
    const first = lb0.apply(() => {
      // 600 ms of CPU work on the engine: the second task queues behind it.
      const until = Date.now() + 600;
      while (Date.now() < until) {
        /* busy */
      }
      return "first";
    });
    const second = lb0.with({ timeout: 400 }).apply(() => "second");
    expect(await first).toBe("first");
    expect(await second).toBe("second");
    const m = second.metadata[0]!;
    expect(m.started!.getTime() - m.submitted.getTime()).toBeGreaterThanOrEqual(400);
  });

  it("a task that observes engine.signal cleans up when cancelled, and its engine keeps its namespace", async () => {
    const dir = work("signal");
    const resets: number[] = [];
    const onReset = (r: { id: number }) => resets.push(r.id);
    rc.on("engine_reset", onReset);
    try {
      await rc.engine(1).push({ pushedMark: 7 });
      const ac = new AbortController();
      const cleanup = join(dir, "cleaned");
      const ar = rc
        .loadBalancedView([1])
        .with({ signal: ac.signal })
        .apply(
          async (started: string, cleaned: string) => {
            const fs = require("node:fs") as typeof import("node:fs");
            fs.writeFileSync(started, "");
            const signal = engine.signal!;
            await new Promise((resolve, reject) => {
              const t = setTimeout(() => reject(new Error("never cancelled")), 20_000);
              signal.addEventListener(
                "abort",
                () => {
                  clearTimeout(t);
                  resolve(undefined);
                },
                { once: true },
              );
            });
            fs.writeFileSync(cleaned, `reason: ${(signal.reason as Error).message}`);
            return "cleaned up";
          },
          join(dir, "started"),
          cleanup,
        );
      await waitFor(() => existsSync(join(dir, "started")), { what: "the task to start" });
      ac.abort();
      const err = await failure(() => ar);
      expect(err).toBeInstanceOf(TaskCancelledError);
      expect((err as TaskCancelledError).code).toBe("ERR_PTC_TASK_CANCELLED");
      expect(readFileSync(cleanup, "utf8")).toMatch(/^reason: /);
      // It stopped on its own within the grace period: no executor replacement, the namespace is intact.
      expect(await rc.engine(1).apply(() => pushedMark)).toBe(7);
      expect(resets).toEqual([]);
    } finally {
      rc.off("engine_reset", onReset);
    }
  });

  describe("cancellation of queued and running tasks → TaskCancelledError (ERR_PTC_TASK_CANCELLED)", () => {
    const expectCancelled = async (p: PromiseLike<unknown>) => {
      const err = await failure(() => p);
      expect(err).toBeInstanceOf(TaskCancelledError);
      expect((err as TaskCancelledError).code).toBe("ERR_PTC_TASK_CANCELLED");
      return err as TaskCancelledError;
    };

    it("through lb.with({ signal })", async () => {
      const dir = work("with-signal");
      const ac = new AbortController();
      const lb0 = rc.loadBalancedView([0]).with({ signal: ac.signal });
      const running = lb0.apply(gatedTask, join(dir, "gate"), join(dir, "run"));
      const queued = lb0.apply(markerTask, join(dir, "queued.marker"));
      await waitFor(() => startedOn(join(dir, "run")) === 0, { what: "the first task to start" });
      ac.abort();
      await expectCancelled(running);
      await expectCancelled(queued);
      expect(existsSync(join(dir, "run.cancelled"))).toBe(true);
      expect(await rc.engine(0).apply(probeFiles, dir, "queued")).toEqual([]);
    });

    it("an already-aborted signal: the task is cancelled and never runs (apply and map)", async () => {
      const dir = work("aborted-before");
      const ac = new AbortController();
      ac.abort();
      const lb0 = rc.loadBalancedView([0]).with({ signal: ac.signal });
      const m = lb0.map(markerTask, [join(dir, "late-map.marker")]);
      await expectCancelled(m);
      const late = lb0.apply(markerTask, join(dir, "late.marker"));
      await expectCancelled(late);
      expect(await rc.engine(0).apply(probeFiles, dir, "late")).toEqual([]);
    });

    it("through the map option signal", async () => {
      const dir = work("map-signal");
      const farm = async (i: number) => {
        const fs = require("node:fs") as typeof import("node:fs");
        if (i < 2) {
          fs.writeFileSync(`${wd}/busy-${i}`, "");
          while (!engine.signal?.aborted) await new Promise((r) => setTimeout(r, 5));
          fs.writeFileSync(`${wd}/cleanup-${i}`, "");
          return -1;
        }
        fs.writeFileSync(`${wd}/ran-${i}`, "");
        return i;
      };
      const ac = new AbortController();
      const m = rc.loadBalancedView().map(farm, range(30), { signal: ac.signal, chunkSize: 1, scope: { wd: dir } });
      await waitFor(() => existsSync(join(dir, "busy-0")) && existsSync(join(dir, "busy-1")), {
        what: "both engines to be busy",
      });
      ac.abort(new Error("user gave up"));
      const err = await expectCancelled(m);
      expect(err.cause).toEqual(new Error("user gave up"));
      for (const id of ids) expect(await rc.engine(id).apply(probeFiles, dir, "ran-")).toEqual([]);
      expect(filesStartingWith(dir, "cleanup-")).toEqual(["cleanup-0", "cleanup-1"]);
    });

    it("through rc.abort() (every pending task of the client) and rc.abort(result)", async () => {
      const dir = work("rc-abort");
      const lb = rc.loadBalancedView();
      const r0 = lb.apply(gatedTask, join(dir, "gate"), join(dir, "r0"));
      const r1 = lb.apply(gatedTask, join(dir, "gate"), join(dir, "r1"));
      await waitFor(() => startedOn(join(dir, "r0")) !== undefined && startedOn(join(dir, "r1")) !== undefined, {
        what: "both tasks to start",
      });
      const queued = range(6).map((k) => lb.apply(markerTask, join(dir, `q${k}.marker`)));
      const m = lb.map((x: number) => x, range(10), { chunkSize: 1 });
      await waitFor(
        async () => {
          const qs = await rc.queueStatus();
          return qs.unassigned + ids.reduce((n, id) => n + qs.engines[id]!.queued, 0) === 16;
        },
        { what: "16 tasks waiting behind the running two" },
      );
      rc.abort();
      for (const p of [r0, r1, ...queued, m]) await expectCancelled(p);
      for (const id of ids) expect(await rc.engine(id).apply(probeFiles, dir, "q")).toEqual([]);
      expect(existsSync(join(dir, "r0.cancelled")) && existsSync(join(dir, "r1.cancelled"))).toBe(true);

      // rc.abort(result) and rc.abort([results]) cancel only those.
      const lb0 = rc.loadBalancedView([0]);
      const held = lb0.apply(gatedTask, join(dir, "gate2"), join(dir, "held"));
      await waitFor(() => startedOn(join(dir, "held")) === 0, { what: "the held task to start" });
      const victim = lb0.apply(markerTask, join(dir, "victim.marker"));
      const keeper = lb0.apply(markerTask, join(dir, "keeper.marker"));
      rc.abort(victim);
      await expectCancelled(victim);
      rc.abort([held]);
      await expectCancelled(held);
      expect(await keeper).toBe(0);
      expect(existsSync(join(dir, "victim.marker"))).toBe(false);
    });

    it("through AsyncResult.abort(), for a queued and for a running task", async () => {
      const dir = work("ar-abort");
      const lb0 = rc.loadBalancedView([0]);
      const running = lb0.apply(gatedTask, join(dir, "gate"), join(dir, "run"));
      await waitFor(() => startedOn(join(dir, "run")) === 0, { what: "the first task to start" });
      const queued = lb0.apply(markerTask, join(dir, "queued.marker"));
      queued.abort();
      await expectCancelled(queued);
      expect(queued.ready()).toBe(true);
      expect(queued.successful()).toBe(false);
      expect(running.ready()).toBe(false);
      running.abort();
      await expectCancelled(running);
      expect(existsSync(join(dir, "run.cancelled"))).toBe(true);
      expect(await rc.engine(0).apply(probeFiles, dir, "queued")).toEqual([]);
    });

    it("a running task that ignores its signal is stopped after the grace period; its engine is reset and stays registered", async () => {
      const dir = work("forced");
      const resets: number[] = [];
      const onReset = (r: { id: number }) => resets.push(r.id);
      rc.on("engine_reset", onReset);
      try {
        const pid0 = rc.engineInfo(0)!.pid;
        const spin = rc.loadBalancedView([0]).apply(
          (started: string) => {
            require("node:fs").writeFileSync(started, "");
            for (;;) {
              /* ignores engine.signal */
            }
          },
          join(dir, "started"),
        );
        await waitFor(() => existsSync(join(dir, "started")), { what: "the spinning task to start" });
        spin.abort();
        await expectCancelled(spin);
        await waitFor(() => resets.includes(0), { what: "engine 0 to be reset" });
        expect(rc.ids).toEqual(ids);
        expect(await rc.loadBalancedView([0]).apply(() => process.pid)).toBe(pid0);
      } finally {
        rc.off("engine_reset", onReset);
      }
    });
  });

  it("retries: a task that fails twice then succeeds returns its value after 3 attempts, retried on the other engine first", async () => {
    const dir = work("retries");
    const flaky = (log: string) => {
      const fs = require("node:fs") as typeof import("node:fs");
      fs.appendFileSync(log, `${engine.id}\n`);
      const attempt = fs.readFileSync(log, "utf8").split("\n").filter(Boolean).length;
      if (attempt < 3) throw new Error(`attempt ${attempt} failed`);
      return `ok on attempt ${attempt}`;
    };
    const log = join(dir, "flaky.log");
    const ar = rc.loadBalancedView().with({ retries: 2 }).apply(flaky, log);
    expect(await ar).toBe("ok on attempt 3");
    expect(ar.metadata[0]!.attempts).toBe(3);
    expect(ar.metadata[0]!.status).toBe("ok");
    const engines = lines(log).map(Number);
    expect(engines).toHaveLength(3);
    expect(engines[1]).not.toBe(engines[0]);
    expect(ar.metadata[0]!.engineId).toBe(engines[2]);

    // Too few retries: the last error, with the attempts made.
    const log2 = join(dir, "flaky2.log");
    const short = rc.loadBalancedView().with({ retries: 1 }).apply(flaky, log2);
    const err = await failure(() => short);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).remoteMessage).toBe("attempt 2 failed");
    expect(short.metadata[0]!.attempts).toBe(2);
    expect(new Set(lines(log2)).size).toBe(2);

    // Without retries a failure is final.
    const log3 = join(dir, "flaky3.log");
    await expect(rc.loadBalancedView().apply(flaky, log3)).rejects.toBeInstanceOf(RemoteError);
    expect(lines(log3)).toHaveLength(1);

    // In a map: the failing chunk is retried, the map completes.
    const mapDir = join(dir, "map");
    mkdirSync(mapDir);
    const once = (i: number) => {
      const fs = require("node:fs") as typeof import("node:fs");
      const f = `${wd}/item-${i}`;
      fs.appendFileSync(f, "x");
      if (i % 10 === 3 && fs.readFileSync(f, "utf8").length === 1) throw new Error(`item ${i} fails once`);
      return i * 3;
    };
    const m = rc.loadBalancedView().map(once, range(40), { chunkSize: 1, retries: 1, scope: { wd: mapDir } });
    expect(await m).toEqual(range(40).map((i) => i * 3));
    expect(m.metadata.filter((x) => x.attempts === 2)).toHaveLength(4);
    expect(m.metadata.filter((x) => x.attempts === 1)).toHaveLength(36);
  });

  it("rc.queueStatus(): per-engine queued, running, completed, and unassigned tasks", async () => {
    const before = await rc.queueStatus();
    expectQueueStatusShape(before, ids);
    const dir = work("qs");
    const lb0 = rc.loadBalancedView([0]);
    const held = lb0.apply(gatedTask, join(dir, "gate"), join(dir, "held"));
    await waitFor(() => startedOn(join(dir, "held")) === 0, { what: "the held task to start" });
    const waiting = range(3).map((k) => lb0.apply((x: number) => x, k));
    const during = await waitFor(
      async () => {
        const qs = await rc.queueStatus();
        return qs.engines[0]!.queued + qs.unassigned === 3 ? qs : undefined;
      },
      { what: "3 tasks waiting for engine 0" },
    );
    expectQueueStatusShape(during, ids);
    expect(during.engines[0]!.running).toBe(1);
    expect(during.engines[1]).toMatchObject({ running: 0, queued: 0 });
    writeFileSync(join(dir, "gate"), "");
    expect(await held).toBe("opened");
    expect(await Promise.all(waiting)).toEqual([0, 1, 2]);
    const after = await rc.queueStatus();
    expectQueueStatusShape(after, ids);
    expect(after.engines[0]).toMatchObject({ running: 0, queued: 0 });
    expect(after.engines[0]!.completed).toBe(before.engines[0]!.completed + 4);
    expect(after.engines[1]!.completed).toBe(before.engines[1]!.completed);
    expect(after.unassigned).toBe(0);
  });

  it("AsyncResult and map metadata: engine, submitted ≤ started ≤ completed, stdout and stderr per task or chunk, attempts; progress counts up to the total", async () => {
    const lb = rc.loadBalancedView();
    const ar = lb.apply((s: string) => {
      console.log(`out ${s}`);
      console.error(`err ${s}`);
      return s.length;
    }, "abc");
    expect(await ar).toBe(3);
    expect(ar.ready()).toBe(true);
    expect(ar.successful()).toBe(true);
    expect(ar.progress).toBe(1);
    expect(ar.total).toBe(1);
    const m = ar.metadata[0]!;
    expect(ids).toContain(m.engineId);
    expect(m.status).toBe("ok");
    expect(m.attempts).toBe(1);
    expect(m.stdout).toBe("out abc\n");
    expect(m.stderr).toBe("err abc\n");
    expect(ar.stdout).toEqual(["out abc\n"]);
    expect(m.started).toBeInstanceOf(Date);
    expect(m.submitted.getTime()).toBeLessThanOrEqual(m.started!.getTime());
    expect(m.started!.getTime()).toBeLessThanOrEqual(m.completed!.getTime());
    expect(m.completed!.getTime()).toBeLessThanOrEqual(m.received!.getTime());
    expect(ar.elapsed).toBeGreaterThanOrEqual(0);
    expect(await ar.get(1_000)).toBe(3);

    // Map metadata: one entry per chunk, each with the output of its items.
    const logged = (x: number) => {
      console.log(`item ${x}`);
      return -x;
    };
    const mr = lb.map(logged, range(40), { chunkSize: 4 });
    expect(mr.length).toBe(40);
    expect(await mr).toEqual(range(40).map((x) => -x));
    expect(mr.progress).toBe(40);
    expect(mr.metadata).toHaveLength(10);
    const seen: number[] = [];
    for (const c of mr.metadata) {
      expect(ids).toContain(c.engineId);
      expect(c.status).toBe("ok");
      expect(c.attempts).toBe(1);
      expect(c.started!.getTime()).toBeLessThanOrEqual(c.completed!.getTime());
      const items = c.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => Number(l.replace("item ", "")));
      expect(items).toHaveLength(4);
      expect(items).toEqual(range(4).map((j) => items[0]! + j));
      expect(items[0]! % 4).toBe(0);
      seen.push(...items);
    }
    expect(seen.sort((a, b) => a - b)).toEqual(range(40));

    // Progress while streaming: never behind what was yielded, never decreasing, ends at the total.
    const run = lb.imap((x: number) => x, range(60), { chunkSize: 5 });
    expect(run.length).toBe(60);
    let last = 0;
    let yielded = 0;
    for await (const _ of run) {
      yielded++;
      expect(run.progress).toBeGreaterThanOrEqual(yielded);
      expect(run.progress).toBeGreaterThanOrEqual(last);
      expect(run.progress).toBeLessThanOrEqual(60);
      last = run.progress;
    }
    expect(run.progress).toBe(60);
    expect(lb.imap((x: number) => x, gen(3)).length).toBeUndefined();
  });
});

describe("schemes: clusters started with --scheme lru | random | weighted", () => {
  const schemes = ["lru", "random", "weighted"] as const;
  const clusters: TestCluster[] = [];
  const clients = new Map<string, Client>();

  beforeAll(async () => {
    await Promise.all(
      schemes.map(async (s) => {
        // The weighted cluster also runs 3 tasks at once per engine: its weights are load relative to concurrency.
        const extra = ["--scheme", s, ...(s === "weighted" ? ["--concurrency", "3"] : [])];
        const c = await startTestCluster(tmp.dir, { n: 2, profile: s, extra });
        clusters.push(c);
        clients.set(s, await c.connect());
      }),
    );
  });

  afterAll(async () => {
    for (const c of clients.values()) await c.close();
    const errors: unknown[] = [];
    for (const c of clusters) await c.stop().catch((e: unknown) => errors.push(e));
    if (errors.length) throw errors[0];
  });

  it.each(schemes)("--scheme %s runs maps correctly over both engines", async (s) => {
    const rc = clients.get(s)!;
    expect(rc.ids).toEqual([0, 1]);
    const lb = rc.loadBalancedView();
    const f = async (x: number) => {
      if (x % 7 === 0) await new Promise((r) => setTimeout(r, 3));
      return { y: x * 2 + 1, engine: engine.id };
    };
    const out = await lb.map(f, range(200), { chunkSize: 1 });
    expect(out.map((r) => r.y)).toEqual(range(200).map((x) => x * 2 + 1));
    expect(new Set(out.map((r) => r.engine))).toEqual(new Set([0, 1]));
    const g = await lb.map((x: number) => x - 1, gen(500));
    expect(g).toEqual(range(500).map((x) => x - 1));
    const unordered = await collect(lb.imap((x: number) => x % 11, agen(100), { ordered: false }));
    expect(unordered.sort((a, b) => a - b)).toEqual(
      range(100)
        .map((x) => x % 11)
        .sort((a, b) => a - b),
    );
  });

  it("--concurrency 3: each engine runs 3 tasks at once, each with its own engine.signal", async () => {
    const rc = clients.get("weighted")!;
    const dir = scratchDir(tmp.dir, "barrier-");
    // A barrier: every task waits until all 6 have started, which needs 2 engines × 3 slots.
    const barrier = async (k: number, n: number) => {
      const fs = require("node:fs") as typeof import("node:fs");
      fs.writeFileSync(`${wd}/in-${k}`, String(engine.id));
      const until = Date.now() + 15_000;
      while (fs.readdirSync(wd).filter((f) => f.startsWith("in-")).length < n) {
        if (Date.now() > until) throw new Error("not every task ran at once");
        await new Promise((r) => setTimeout(r, 5));
      }
      return { engine: engine.id, aborted: engine.signal!.aborted };
    };
    const out = await rc.loadBalancedView().map(
      barrier,
      range(6),
      range(6).map(() => 6),
      { chunkSize: 1, scope: { wd: dir } },
    );
    const perEngine = [0, 1].map((id) => out.filter((r) => r.engine === id).length);
    expect(perEngine).toEqual([3, 3]);
    expect(out.every((r) => r.aborted === false)).toBe(true);

    // Cancelling one of three concurrent tasks aborts only its own signal.
    const ac = new AbortController();
    const dir2 = scratchDir(tmp.dir, "per-task-signal-");
    const lb0 = rc.loadBalancedView([0]);
    const others = [
      lb0.apply(gatedTask, join(dir2, "gate"), join(dir2, "t1")),
      lb0.apply(gatedTask, join(dir2, "gate"), join(dir2, "t2")),
    ];
    const victim = lb0.with({ signal: ac.signal }).apply(gatedTask, join(dir2, "gate"), join(dir2, "t3"));
    await waitFor(() => ["t1", "t2", "t3"].every((t) => startedOn(join(dir2, t)) === 0), {
      what: "3 tasks running at once on engine 0",
    });
    ac.abort();
    await expect(victim).rejects.toBeInstanceOf(TaskCancelledError);
    expect(existsSync(join(dir2, "t3.cancelled"))).toBe(true);
    writeFileSync(join(dir2, "gate"), "");
    expect(await Promise.all(others)).toEqual(["opened", "opened"]);
    expect(filesStartingWith(dir2, "t1.cancelled").concat(filesStartingWith(dir2, "t2.cancelled"))).toEqual([]);
  });
});
