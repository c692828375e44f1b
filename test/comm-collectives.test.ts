import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CompositeError } from "@ptcluster/client";
import { tempClusterDir, useCluster } from "./helpers/cluster.js";
import { failure, scratchDir } from "./helpers/lb.js";
import { waitFor } from "./helpers/wait.js";

// engine.comm's collectives on real engines (issue 14), on the engines' default paths (executor links): every
// collective on groups of 1 to 4 engines, permuted targets, mismatched calls, a member killed.

const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

/** Runs on every rank: one value per collective, computed from the rank. */
const everyCollective = async () => {
  const { comm } = engine;
  const { rank, size } = comm;
  const big = new Float64Array(100_000).fill(rank + 1); // 800 KB: the ring allreduce
  const ringSum = (await comm.allreduce(big, "sum")) as Float64Array;
  // Every element of ring results, chunks of uneven length, and the caller's array left as it was.
  const mine = Float64Array.from({ length: 100_003 }, (_, i) => (i % 7) * (rank + 1));
  const before = mine.slice();
  const ringMax = (await comm.allreduce(mine, "max")) as Float64Array;
  const bigs = BigInt64Array.from({ length: 10_001 }, (_, i) => BigInt(i * (rank + 1)));
  const ringBig = (await comm.allreduce(bigs, "sum")) as BigInt64Array;
  const tri = BigInt((size * (size + 1)) / 2);
  const ringExact =
    ringMax.length === mine.length &&
    ringMax.every((v, i) => v === (i % 7) * size) &&
    mine.every((v, i) => v === before[i]) &&
    ringBig.every((v, i) => v === BigInt(i) * tri) &&
    bigs.every((v, i) => v === BigInt(i * (rank + 1)));
  return {
    rank,
    size,
    bcast: await comm.bcast(rank === 0 ? { from: engine.id } : undefined),
    bcastFromLast: await comm.bcast(rank === size - 1 ? "last" : undefined, { root: size - 1 }),
    reduce: await comm.reduce(rank + 1, "sum"),
    allreduceSum: await comm.allreduce(rank + 1, "sum"),
    allreduceMax: await comm.allreduce(rank * 10, "max"),
    allreduceBig: await comm.allreduce(BigInt(rank + 1), "prod"),
    allreduceFn: await comm.allreduce([rank], (a: number[], b: number[]) => [...a, ...b]),
    allreduceArray: Array.from((await comm.allreduce(Float64Array.of(rank, 1), "sum")) as Float64Array),
    ringFirstLast: [ringSum[0], ringSum[ringSum.length - 1]],
    ringExact,
    gather: await comm.gather(`r${rank}`, { root: 0 }),
    allgather: await comm.allgather(rank * rank),
    scatter: await comm.scatter(rank === 0 ? Array.from({ length: size }, (_, i) => i * 100) : undefined),
    alltoall: await comm.alltoall(Array.from({ length: size }, (_, i) => `${rank}->${i}`)),
    barrier: await comm.barrier().then(() => "passed"),
  };
};

describe("engine.comm collectives on real engines", () => {
  const ctx = useCluster({ n: 4, dir: tmp.dir, profile: "coll", extra: ["--heartbeat", "200"] });

  for (const size of [1, 2, 3, 4]) {
    it(`every collective on ${size} engine${size > 1 ? "s" : ""}, ranks in the order of the targets`, async () => {
      // Targets reversed: rank r is the engine listed r-th.
      const targets = ctx.cluster.ids.slice(0, size).reverse();
      const out = await ctx.rc.view(targets).applySync(everyCollective);
      const tri = (size * (size + 1)) / 2;
      let fact = 1n;
      for (let i = 2n; i <= BigInt(size); i++) fact *= i;
      out.forEach((o, r) => {
        expect(o.rank).toBe(r);
        expect(o.size).toBe(size);
        expect(o.bcast).toEqual({ from: targets[0] });
        expect(o.bcastFromLast).toBe("last");
        expect(o.reduce).toBe(r === 0 ? tri : undefined);
        expect(o.allreduceSum).toBe(tri);
        expect(o.allreduceMax).toBe((size - 1) * 10);
        expect(o.allreduceBig).toBe(fact);
        expect(o.allreduceFn).toEqual(Array.from({ length: size }, (_, i) => i));
        expect(o.allreduceArray).toEqual([(size * (size - 1)) / 2, size]);
        expect(o.ringFirstLast).toEqual([tri, tri]);
        expect(o.ringExact).toBe(true);
        expect(o.gather).toEqual(r === 0 ? Array.from({ length: size }, (_, i) => `r${i}`) : undefined);
        expect(o.allgather).toEqual(Array.from({ length: size }, (_, i) => i * i));
        expect(o.scatter).toBe(r * 100);
        expect(o.alltoall).toEqual(Array.from({ length: size }, (_, i) => `${i}->${r}`));
        expect(o.barrier).toBe("passed");
      });
    });
  }

  it("two members calling different collectives fail with CommMismatchError on every rank, not a hang", async () => {
    const err = await failure(() =>
      ctx.rc
        .view(ctx.cluster.ids.slice(0, 2))
        .with({ timeout: 20_000 })
        .apply(async () => {
          const { comm } = engine;
          if (comm.rank === 0) await comm.bcast("x", { root: 0 });
          else await comm.reduce(1, "sum", { root: 0 });
          // A rank whose call waited for nobody learns of the mismatch at its next call.
          await comm.barrier({ timeout: 10_000 });
          return "no error";
        }),
    );
    expect(err).toBeInstanceOf(CompositeError);
    for (const e of (err as CompositeError).errors)
      expect((e as { remoteName?: string }).remoteName ?? (e as Error).name).toBe("CommMismatchError");
  });

  it("a member SIGKILLed in the middle of an allreduce ends the others' call with CommPeerLostError within the heartbeat window", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    const pidB = (await ctx.rc.engine(b).apply(() => engine.pid)) as number;
    const started = Date.now();
    const marker = join(scratchDir(tmp.dir), "past-barrier");
    const call = ctx.rc.view([a, b]).apply(async (file: string) => {
      const { comm } = engine;
      await comm.barrier();
      // Rank 1 never joins the allreduce: it is killed while rank 0 waits.
      if (comm.rank === 1) {
        require("node:fs").writeFileSync(file, "");
        await new Promise((r) => setTimeout(r, 60_000));
      }
      return comm.allreduce(1, "sum", { timeout: 30_000 });
    }, marker);
    await waitFor(() => existsSync(marker), { what: "both ranks past the barrier" });
    process.kill(pidB, "SIGKILL");
    const err = await failure(() => call);
    expect(err).toBeInstanceOf(CompositeError);
    const ofA = (err as CompositeError).errors.find((e) => (e as { engineId?: number }).engineId === a) as {
      remoteName?: string;
      code?: string;
    };
    expect(ofA.remoteName).toBe("CommPeerLostError");
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
