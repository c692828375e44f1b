import { describe, expect, it } from "vitest";
import { Collectives } from "../src/comm/collectives.js";
import { Fabric } from "./comm-fabric.js";

/** Runs `program` on every rank of a fresh shuffled fabric; resolves with each rank's result. */
async function spmd<T>(size: number, program: (comm: Collectives, rank: number) => Promise<T>): Promise<T[]> {
  const fabric = new Fabric(size, { shuffle: true });
  const comms = fabric.wires.map((w) => new Collectives(w));
  try {
    return await Promise.all(comms.map((c, rank) => program(c, rank)));
  } finally {
    for (const c of comms) c.close();
  }
}

const SIZES = [1, 2, 3, 4, 5, 8];
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe.each(SIZES)("collectives on %i ranks", (p) => {
  const last = p - 1;

  it("bcast gives the root's value to every rank, from any root", async () => {
    const out = await spmd(p, async (c, r) => {
      const a = await c.bcast(r === 0 ? { hello: "from 0", n: 1n } : undefined, { root: 0 });
      const b = await c.bcast(r === last ? `from ${last}` : undefined, { root: last });
      return [a, b];
    });
    for (const [a, b] of out) {
      expect(a).toEqual({ hello: "from 0", n: 1n });
      expect(b).toBe(`from ${last}`);
    }
  });

  it("reduce gives the root the reduction and the others undefined", async () => {
    const out = await spmd(p, async (c, r) => [
      await c.reduce(r + 1, "sum", { root: last }),
      await c.reduce(BigInt(r + 1), "prod", { root: 0 }),
      await c.reduce(String(r), (a: string, b: string) => a + b, { root: last }),
      await c.reduce(Float64Array.of(r, 0 - r), "max", { root: 0 }),
    ]);
    const fact = range(p).reduce((a, i) => a * BigInt(i + 1), 1n);
    expect(out[last]![0]).toBe((p * (p + 1)) / 2);
    expect(out[0]![1]).toBe(fact);
    // A function operator sees the values in rank order, whatever the root.
    expect(out[last]![2]).toBe(range(p).join(""));
    expect(out[0]![3]).toEqual(Float64Array.of(last, 0));
    for (let r = 0; r < p; r++) {
      if (r !== last) expect([out[r]![0], out[r]![2]]).toEqual([undefined, undefined]);
      if (r !== 0) expect([out[r]![1], out[r]![3]]).toEqual([undefined, undefined]);
    }
  });

  it("allreduce gives every rank the same reduction: numbers, bigints, typed arrays, a function", async () => {
    const out = await spmd(p, async (c, r) => {
      const local = Float64Array.of(r, 0.1 * r, 1);
      const before = local.slice();
      const sum = await c.allreduce(local, "sum");
      expect(local).toEqual(before); // the caller's array is not written
      expect(sum).not.toBe(local);
      return {
        n: await c.allreduce(r + 1, "sum"),
        min: await c.allreduce(10 - r, "min"),
        max: await c.allreduce(r * 3, "max"),
        big: await c.allreduce(2n ** 62n * BigInt(r + 1), "sum"),
        prod: await c.allreduce(BigInt64Array.of(BigInt(r + 1), -1n), "prod"),
        sum,
        concat: await c.allreduce([r], (a: number[], b: number[]) => [...a, ...b]),
      };
    });
    const fact = range(p).reduce((a, i) => a * BigInt(i + 1), 1n);
    for (const o of out) {
      expect(o.n).toBe((p * (p + 1)) / 2);
      expect(o.min).toBe(10 - last);
      expect(o.max).toBe(last * 3);
      expect(o.big).toBe(2n ** 62n * BigInt((p * (p + 1)) / 2));
      expect(o.prod).toEqual(BigInt64Array.of(fact, p % 2 === 0 ? 1n : -1n));
      expect(o.sum[0]).toBe((last * p) / 2);
      expect(o.sum[2]).toBe(p);
      expect(o.concat).toEqual(range(p));
      // The same bits on every rank, not only close values.
      expect(o.sum).toEqual(out[0]!.sum);
    }
  });

  it("gather and allgather give every value in rank order", async () => {
    const out = await spmd(p, async (c, r) => ({
      g: await c.gather({ rank: r, tags: new Set([r]) }, { root: last }),
      all: await c.allgather(`v${r}`),
    }));
    out.forEach((o, r) => {
      expect(o.g).toEqual(r === last ? range(p).map((i) => ({ rank: i, tags: new Set([i]) })) : undefined);
      expect(o.all).toEqual(range(p).map((i) => `v${i}`));
    });
  });

  it("scatter gives each rank its part, alltoall one value from each rank", async () => {
    const out = await spmd(p, async (c, r) => ({
      s: await c.scatter(r === last ? range(p).map((i) => ({ part: i * 10 })) : undefined, { root: last }),
      a: await c.alltoall(range(p).map((j) => `${r}->${j}`)),
    }));
    out.forEach((o, r) => {
      expect(o.s).toEqual({ part: r * 10 });
      expect(o.a).toEqual(range(p).map((i) => `${i}->${r}`));
    });
  });

  it("barrier holds every rank until the last one calls it", async () => {
    let arrived = 0;
    await spmd(p, async (c, r) => {
      if (r === last) for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
      arrived++;
      await c.barrier();
      expect(arrived).toBe(p);
      await c.barrier(); // twice in a row: the second must not be satisfied by the first's messages
    });
  });
});

describe("allreduce of large typed arrays (ring)", () => {
  it("sums 1,048,576 doubles on 4 ranks, each sending at most 2·(p−1)/p of the array", async () => {
    const p = 4;
    const n = 1_048_576;
    const fabric = new Fabric(p, { shuffle: true });
    const comms = fabric.wires.map((w) => new Collectives(w));
    const results = await Promise.all(
      comms.map((c, r) => {
        const a = new Float64Array(n);
        for (let i = 0; i < n; i++) a[i] = i * (r + 1);
        return c.allreduce(a, "sum");
      }),
    );
    for (const c of comms) c.close();
    for (const res of results) {
      expect(res.length).toBe(n);
      for (const i of [0, 1, 262_143, 262_144, 524_287, n - 1]) expect(res[i]).toBe(i * 10);
      let wrong = 0;
      for (let i = 0; i < n; i++) if (res[i] !== i * 10) wrong++;
      expect(wrong).toBe(0);
    }
    const bound = ((2 * (p - 1)) / p) * n * 8;
    for (const bytes of fabric.bytesSent) {
      expect(bytes).toBeGreaterThan(0);
      expect(bytes).toBeLessThanOrEqual(bound + 1024);
    }
    // 2·(p−1) steps, one message to the next rank each.
    expect(fabric.dataMessages).toBe(p * 2 * (p - 1));
  });

  it("handles a length that p does not divide, with min and bigints", async () => {
    const n = 100_003; // ≥ 64 KiB in both kinds
    const out = await spmd(3, async (c, r) => {
      const f = new Float32Array(n).map((_, i) => (i % 7) - r);
      const b = new BigUint64Array(n).map((_, i) => BigInt(i + r));
      return [await c.allreduce(f, "min"), await c.allreduce(b, "sum")] as const;
    });
    for (const [f, b] of out) {
      expect(f[0]).toBe(-2);
      expect(f[n - 1]).toBe(((n - 1) % 7) - 2);
      expect(b[n - 1]).toBe(BigInt(3 * (n - 1) + 3));
      expect(b[12345]).toBe(BigInt(3 * 12345 + 3));
    }
  });
});

describe("message counts of the algorithms", () => {
  it("on 5 ranks: trees p − 1, recursive doubling with the fold, rings and pairwise p(p − 1), dissemination p⌈log2 p⌉", async () => {
    const p = 5;
    const counts: Record<string, number> = {};
    const checks: Record<string, number> = {};
    const calls: [string, (c: Collectives) => Promise<unknown>][] = [
      ["bcast", (c) => c.bcast(1, { root: 2 })],
      ["reduce", (c) => c.reduce(1, "sum", { root: 3 })],
      ["allreduce", (c) => c.allreduce(1, "sum")],
      ["gather", (c) => c.gather(1, { root: 1 })],
      ["scatter", (c) => c.scatter([1, 2, 3, 4, 5], { root: 0 })],
      ["allgather", (c) => c.allgather(1)],
      ["alltoall", (c) => c.alltoall([1, 2, 3, 4, 5])],
      ["barrier", (c) => c.barrier()],
    ];
    for (const [name, call] of calls) {
      const fabric = new Fabric(p);
      const comms = fabric.wires.map((w) => new Collectives(w));
      await Promise.all(comms.map(call));
      for (const c of comms) c.close();
      counts[name] = fabric.dataMessages;
      checks[name] = fabric.messagesSent.reduce((a, b) => a + b, 0) - fabric.dataMessages;
    }
    expect(counts).toEqual({
      bcast: 4,
      reduce: 4,
      allreduce: 4 * 2 + 2, // 4 ranks × log2 4 rounds, and rank 0's part folded into rank 1 and back
      gather: 4,
      scatter: 4,
      allgather: 20,
      alltoall: 20,
      barrier: 15,
    });
    // One check per collective from every rank but rank 0.
    for (const n of Object.values(checks)) expect(n).toBe(p - 1);
  });
});
