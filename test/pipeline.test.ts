import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  RemoteError,
  TaskTimeoutError,
  UnknownEngineError,
  moduleFunction,
  type PipelineErrorInfo,
  type StageStats,
} from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { failure, scratchDir } from "./helpers/lb.js";

// Found on the engines through `scope`; declared for the type checker only.
declare const wd: string;
declare const k: number;

interface Doc {
  id: number;
  words: string[];
}
const STOP = new Set(["the", "a", "of"]);
const removeStopWords = (d: Doc): Doc => ({ id: d.id, words: d.words.filter((w) => !["the", "a", "of"].includes(w)) });
const stem = (d: Doc): Doc => ({ id: d.id, words: d.words.map((w) => w.replace(/(ing|s)$/, "")) });
const nonEmpty = (d: Doc): boolean => d.words.length > 0;
const pairs = (d: Doc): string[] => d.words.map((w) => `${d.id}:${w}`);
const docs = (n: number): Doc[] =>
  Array.from({ length: n }, (_, i) => ({
    id: i,
    words: i % 7 === 0 ? ["the", "a"] : ["the", `cat${i}s`, "of", "walking"],
  }));

/** The same pipeline in this process. */
function serial(input: Doc[]): string[] {
  return input
    .map((d) => ({ id: d.id, words: d.words.filter((w) => !STOP.has(w)) }))
    .map(stem)
    .filter(nonEmpty)
    .flatMap(pairs);
}

const errorInfo = (e: unknown) => {
  const p = e as PipelineErrorInfo;
  return [p.stage, p.stageName, p.item];
};

describe("pipelines: stages, order, errors, stats", () => {
  const ctx = useCluster({ n: 2 });

  it("map → map → filter → flatMap yields what a serial run yields, in input order", async () => {
    const input = docs(200);
    const p = ctx.rc.pipeline(input).map(removeStopWords, { concurrency: 8 }).map(stem).filter(nonEmpty).flatMap(pairs);
    expect(await p.toArray()).toEqual(serial(input));
    const stats = p.stats();
    expect(stats.map((s) => [s.kind, s.name])).toEqual([
      ["map", "removeStopWords"],
      ["map", "stem"],
      ["filter", "nonEmpty"],
      ["flatMap", "pairs"],
    ]);
    // Every item went through the first three stages; the filter dropped every 7th.
    expect(stats.map((s) => s.done)).toEqual([200, 200, 200, 200 - Math.ceil(200 / 7)]);
    for (const s of stats) {
      expect(s).toMatchObject({ inFlight: 0, failed: 0 });
      expect(s.itemsPerSec).toBeGreaterThan(0);
      expect(s.p95Ms).toBeGreaterThanOrEqual(s.p50Ms);
    }
  });

  it("ordered: false yields every output, first done first out (a permutation of the serial run)", async () => {
    const input = docs(300);
    const out: string[] = [];
    for await (const s of ctx.rc.pipeline(input, { ordered: false }).map(removeStopWords).map(stem).flatMap(pairs))
      out.push(s);
    const want = input
      .map((d) => ({ id: d.id, words: d.words.filter((w) => !STOP.has(w)) }))
      .map(stem)
      .flatMap(pairs);
    expect(out.sort()).toEqual(want.sort());
  });

  it("reads an async generator lazily, ships scope, module functions and functions inside items", async () => {
    async function* gen() {
      for (let i = 0; i < 50; i++) yield { i, f: (x: number) => x + 1 };
    }
    const triple = moduleFunction<(x: number) => number>(
      fileURLToPath(new URL("./fixtures/tasks-module.ts", import.meta.url)),
    );
    const out = await ctx.rc
      .pipeline(gen())
      .map((o: { i: number; f: (x: number) => number }) => o.f(o.i) * k, { scope: { k: 10 } })
      .map(triple)
      .toArray();
    expect(out).toEqual(Array.from({ length: 50 }, (_, i) => (i + 1) * 10 * 3));
  });

  it("binary items and outputs (their own frames) travel intact through the stages", async () => {
    const input = Array.from({ length: 30 }, (_, i) => new Uint8Array(4096 + i).fill(i));
    const out = await ctx.rc
      .pipeline(input)
      .map((b: Uint8Array) => b.map((x) => x + 1))
      .flatMap((b: Uint8Array) => [b.length, b.subarray(0, 2048)])
      .toArray();
    expect(out).toHaveLength(60);
    out.forEach((v, k) => {
      const i = k >> 1;
      if (k % 2 === 0) expect(v).toBe(4096 + i);
      else expect(Buffer.from(v as Uint8Array).equals(Buffer.alloc(2048, i + 1))).toBe(true);
    });
  });

  it("each stage runs only on its `engines`", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    const out = await ctx.rc
      .pipeline(Array.from({ length: 40 }, (_, i) => i))
      .map((i: number) => [i, engine.id], { engines: [a] })
      .map(([i, e]: number[]) => [i as number, e as number, engine.id], { engines: [b] })
      .toArray();
    expect(out.map(([i]) => i)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(new Set(out.map(([, e]) => e))).toEqual(new Set([a]));
    expect(new Set(out.map(([, , e]) => e))).toEqual(new Set([b]));
  });

  it("a stage on engines none of which exists fails at once with UnknownEngineError, naming the stage", async () => {
    const err = (await failure(() =>
      ctx.rc
        .pipeline([1, 2])
        .map((x: number) => x)
        .map((x: number) => x, { engines: [99] })
        .toArray(),
    )) as Error & PipelineErrorInfo;
    expect(err).toBeInstanceOf(UnknownEngineError);
    expect(err.stage).toBe(1);
    expect(err.message).toMatch(/engines \[99\], none of which is registered/);
  });

  it("a stage's `concurrency` bounds its items running at once, across engines", async () => {
    const timed = async (_x: number): Promise<[number, number]> => {
      const start = Date.now();
      await new Promise((r) => setTimeout(r, 25));
      return [start, Date.now()];
    };
    const spans = await ctx.rc
      .pipeline(Array.from({ length: 8 }, (_, i) => i))
      .map((x: number) => x)
      .map(timed, { concurrency: 1 })
      .toArray();
    spans.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
  });

  it('onError "fail": rejects with the user\'s error, naming the stage and the item', async () => {
    const explode = (x: number) => {
      if (x === 17) throw new TypeError(`bad item ${x}`);
      return x;
    };
    const p = ctx.rc
      .pipeline(Array.from({ length: 40 }, (_, i) => i))
      .map((x: number) => x)
      .map(explode);
    const err = (await failure(() => p.toArray())) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.remoteName).toBe("TypeError");
    expect(err.remoteMessage).toBe("bad item 17");
    expect(errorInfo(err)).toEqual([1, "explode", 17]);
    expect(err.message).toMatch(
      /^Pipeline stage 1 \(explode\) failed on item 17: TypeError on engine \d+: bad item 17$/,
    );
    expect(p.stats()[1]?.failed).toBe(1);
    // The same error in a for-await loop, after the outputs before it.
    const seen: number[] = [];
    const again = ctx.rc.pipeline([1, 2, 17, 3]).map(explode);
    const err2 = await failure(async () => {
      for await (const x of again) seen.push(x);
    });
    expect(errorInfo(err2)).toEqual([0, "explode", 2]);
    expect(seen).toEqual([1, 2].slice(0, seen.length));
  });

  it('onError "skip": the failing items are dropped and counted', async () => {
    const input = Array.from({ length: 60 }, (_, i) => i);
    const p = ctx.rc
      .pipeline(input, { onError: "skip" })
      .map((x: number) => {
        if (x % 10 === 3) throw new Error("no threes");
        return x;
      })
      .map((x: number) => x * 2);
    expect(await p.toArray()).toEqual(input.filter((x) => x % 10 !== 3).map((x) => x * 2));
    // `done` counts the items a stage finished, `failed` those it gave up on.
    expect(p.stats().map((s: StageStats) => [s.done, s.failed])).toEqual([
      [54, 6],
      [54, 0],
    ]);
  });

  it("retries: an item that fails once is re-run and succeeds", async () => {
    const dir = scratchDir();
    const flaky = (x: number) => {
      const fs = require("node:fs") as typeof import("node:fs");
      const marker = `${wd}/tried-${x}`;
      if (x % 5 === 0 && !fs.existsSync(marker)) {
        fs.writeFileSync(marker, String(engine.id));
        throw new Error(`first try of ${x}`);
      }
      return x;
    };
    const input = Array.from({ length: 20 }, (_, i) => i);
    const p = ctx.rc.pipeline(input).map(flaky, { retries: 1, scope: { wd: dir } });
    expect(await p.toArray()).toEqual(input);
    expect(p.stats()[0]).toMatchObject({ done: 20, failed: 0, retried: 4 });
    // Without retries the first failure fails the run.
    const again = ctx.rc.pipeline([1, 25]).map(flaky, { scope: { wd: dir } });
    expect(errorInfo(await failure(() => again.toArray()))).toEqual([0, "flaky", 1]);
  });

  it("timeout is per item: a slow item fails with TaskTimeoutError naming it", async () => {
    const slow = async (x: number) => {
      if (x === 4) await new Promise((r) => setTimeout(r, 20_000));
      return x;
    };
    const p = ctx.rc.pipeline(Array.from({ length: 8 }, (_, i) => i)).map(slow, { timeout: 300 });
    const err = (await failure(() => p.toArray())) as TaskTimeoutError;
    expect(err).toBeInstanceOf(TaskTimeoutError);
    expect(err.timeoutMs).toBe(300);
    expect(errorInfo(err)).toEqual([0, "slow", 4]);
    // Items that each take less than the timeout pass, though together they take more (12 × 60 ms
    // on 2 engines is at least 360 ms on one of them, against a limit of 300 ms per item).
    const quick = await ctx.rc
      .pipeline(Array.from({ length: 12 }, (_, i) => i))
      .map(async (x: number) => new Promise((r) => setTimeout(() => r(x), 60)), { timeout: 300 })
      .toArray();
    expect(quick).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  // When `pipe_end` arrives after the last items were reported (an input that ends a while after
  // its last item), the controller still ends the run with a `pipe_out` carrying the final stats.
  it("stats are final once the run is over, even when the input ends after its last item finished", async () => {
    // Item 2 is read once item 1 came back (with the first stats); the input ends 30 ms after item 2
    // came back: within the controller's stats period (250 ms), so no heartbeat sends them either.
    let got: (v: number) => void = () => undefined;
    const next = () => new Promise<number>((r) => (got = r));
    let first = next();
    async function* slowEnd() {
      yield 1;
      await first;
      first = next();
      yield 2;
      await first;
      await new Promise((r) => setTimeout(r, 30));
    }
    const p = ctx.rc.pipeline(slowEnd()).map((x: number) => x);
    const out: number[] = [];
    for await (const v of p) {
      out.push(v);
      got(v);
    }
    expect(out).toEqual([1, 2]);
    expect(p.stats()[0]?.done).toBe(2);
  });

  it("intermediate values stay in the cluster: the client receives only the last stage's outputs", async () => {
    const items = 20;
    const before = ctx.rc.connectionStats().bytesReceived ?? 0;
    const out = await ctx.rc
      .pipeline(Array.from({ length: items }, (_, i) => i))
      .map((i: number) => String.fromCharCode(97 + (i % 26)).repeat(1 << 20))
      .map((s: string) => s.length)
      .toArray();
    const received = (ctx.rc.connectionStats().bytesReceived ?? 0) - before;
    expect(out).toEqual(Array(items).fill(1 << 20));
    // 20 MiB went from the first stage to the second; well under 5% of it reached the client.
    expect(received).toBeLessThan(0.05 * items * (1 << 20));
  });
});
