/**
 * What `engine.comm` moves, counted by bytes (issue 14's target): the 8 MiB allreduce sends no more
 * per engine than the ring algorithm's 2·(p−1)/p of the array, with 4 engines on this machine's 2
 * cores; small allreduces take the small-message algorithm (⌈log2 p⌉ messages, not the ring's
 * 2·(p−1)). The counts are the engines' own (`engines[i].link.comm.bytesSent`/`bytesReceived`,
 * sent with their heartbeats), read from `rc.status()` and `ptcluster status --json`.
 */
import type { ClusterStatus } from "@ptcluster/client";
import type { CommPathCounts } from "@ptcluster/protocol";
import { afterAll, describe, expect, it } from "vitest";
import { ptcluster, tempClusterDir, useCluster } from "./helpers/cluster.js";
import { countsWhen } from "./helpers/comm.js";

const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

const MiB8 = 8 * 1024 * 1024;
/**
 * What a message costs on an executor link besides its data, at most: the fixed header (36), a
 * frame length (4), the group id, channel and op strings (~60), the value codec's body for a typed
 * array (~40), alignment (≤ 14) and the tag (16), rounded up. The receiver's acknowledgement (27
 * bytes, at most one per message received) and a new link's hello (49) fit in it too.
 */
const PER_MESSAGE = 256;

const sent = (c: CommPathCounts | undefined) => c?.bytesSent ?? 0;
const received = (c: CommPathCounts | undefined) => c?.bytesReceived ?? 0;
const messages = (c: CommPathCounts | undefined) => (c?.direct ?? 0) + (c?.relayed ?? 0);

/** Runs on every rank: allreduces `n` doubles (rank r holds (r + 1)·(i mod 1000)); the elements that came out wrong. */
const bigAllreduce = async (n: number) => {
  const { comm } = engine;
  const mine = new Float64Array(n);
  for (let i = 0; i < n; i++) mine[i] = (comm.rank + 1) * (i % 1000);
  const sum = (await comm.allreduce(mine, "sum")) as Float64Array;
  const k = (comm.size * (comm.size + 1)) / 2;
  let wrong = sum.length === n ? 0 : n;
  for (let i = 0; i < sum.length; i++) if (sum[i] !== k * (i % 1000)) wrong++;
  return wrong;
};

describe("engine.comm byte counts", () => {
  // 4 engines on the 2-core machine: oversubscribed, as the target asks.
  const ctx = useCluster({ n: 4, dir: tmp.dir, profile: "bytes", extra: ["--heartbeat", "100"] });

  /**
   * Counts once every engine in `least` reports at least those messages sent and bytes received
   * (a message is counted once written, its bytes with it; what arrives, as it arrives).
   */
  const settled = async (least: Map<number, { msgs: number; bytesIn: number }>) =>
    countsWhen(ctx.rc, (c) =>
      [...least].every(([id, { msgs, bytesIn }]) => messages(c.get(id)) >= msgs && received(c.get(id)) >= bytesIn),
    );
  /** `settled` for the engines `ids` after a call from `before`: `msgs(rank)` more messages, `bytesIn` more bytes received. */
  const settledAfter = (
    before: Map<number, CommPathCounts>,
    ids: number[],
    msgs: (r: number) => number,
    bytesIn: number,
  ) =>
    settled(
      new Map(
        ids.map((id, r) => [
          id,
          { msgs: messages(before.get(id)) + msgs(r), bytesIn: received(before.get(id)) + bytesIn },
        ]),
      ),
    );

  /**
   * Counts that stopped moving (the same for three heartbeats): engines report theirs with their
   * heartbeats, so what an earlier call sent may still be on its way into them.
   */
  const quiet = async () => {
    let last = "";
    let since = Date.now();
    return countsWhen(ctx.rc, (c) => {
      const now = JSON.stringify([...c].map(([id, x]) => [id, messages(x), sent(x), received(x)]));
      if (now !== last) [last, since] = [now, Date.now()];
      return Date.now() - since >= 300;
    });
  };

  it.each([2, 3, 4])("an 8 MiB allreduce on %i engines sends at most 2·(p−1)/p of the array per engine", async (p) => {
    const ids = ctx.cluster.ids.slice(0, p);
    const before = await quiet();
    const wrong = await ctx.rc.view(ids).applySync(bigAllreduce, MiB8 / 8);
    expect(wrong).toEqual(ids.map(() => 0));
    // Each rank sends p−1 chunks in the reduce-scatter and p−1 in the allgather (and receives as
    // many); every rank but rank 0 also sends rank 0 its check of the collective called.
    const data = 2 * (p - 1) * Math.floor(MiB8 / 8 / p) * 8;
    const after = await settledAfter(before, ids, (r) => 2 * (p - 1) + (r ? 1 : 0), data);
    const ring = (2 * (p - 1) * MiB8) / p;
    // Chunks are ⌊i·n/p⌋ apart: one may hold one element more than n/p.
    const rounding = 2 * (p - 1) * 8;
    for (const id of ids) {
      const msgs = messages(after.get(id)) - messages(before.get(id));
      // Data chunks, and rank 0's check of the collective from every other rank.
      expect(msgs).toBeGreaterThanOrEqual(2 * (p - 1));
      expect(msgs).toBeLessThanOrEqual(2 * (p - 1) + 1);
      const allowance = rounding + PER_MESSAGE * (2 * msgs + 2);
      const out = sent(after.get(id)) - sent(before.get(id));
      const got = received(after.get(id)) - received(before.get(id));
      // At least the data itself (the counters are real), at most the ring's bound plus the headers.
      expect(out).toBeGreaterThanOrEqual(data);
      expect(out).toBeLessThanOrEqual(ring + allowance);
      expect(got).toBeLessThanOrEqual(ring + allowance);
    }
  });

  it("small allreduces take recursive doubling: ⌈log2 p⌉ messages a rank (+1), not the ring's 2·(p−1)", async () => {
    const ids = ctx.cluster.ids.slice(0, 4);
    const before = await settled(new Map());
    // 8 KiB, below the ring's 64 KiB: two whole arrays per rank, not six quarters.
    const [wrong] = await ctx.rc.view(ids).applySync(bigAllreduce, 1024);
    expect(wrong).toBe(0);
    const scalars = await ctx.rc.view(ids).applySync(async () => engine.comm.allreduce(engine.comm.rank + 1, "sum"));
    expect(scalars).toEqual([10, 10, 10, 10]);
    const after = await settledAfter(before, ids, (r) => 4 + (r ? 2 : 0), 2 * 8192 + 2 * 9);
    for (const id of ids) {
      const msgs = messages(after.get(id)) - messages(before.get(id));
      // log2 4 = 2 messages a call, and a call check to rank 0 from the others.
      expect(msgs).toBeGreaterThanOrEqual(4);
      expect(msgs).toBeLessThanOrEqual(6);
      const out = sent(after.get(id)) - sent(before.get(id));
      expect(out).toBeGreaterThanOrEqual(2 * 8192 + 2 * 9);
      expect(out).toBeLessThanOrEqual(2 * 8192 + 2 * 9 + PER_MESSAGE * (2 * msgs + 2));
    }
  });

  it("`out` receives the result (mpi4py's recvbuf): the same values, no new array, the value itself allowed", async () => {
    const ids = ctx.cluster.ids.slice(0, 3);
    const got = await ctx.rc.view(ids).applySync(async () => {
      const { comm } = engine;
      const checks: boolean[] = [];
      // Ring (1 MiB) and recursive doubling (8 KiB), into another array and in place, twice each.
      for (const n of [1 << 17, 1024]) {
        const out = new Float64Array(n);
        for (let round = 0; round < 2; round++) {
          const mine = Float64Array.from({ length: n }, (_, i) => (comm.rank + 1) * ((i + round) % 1000));
          const before = mine.slice();
          const r = await comm.allreduce(mine, "sum", { out });
          checks.push(r === out && out.every((v, i) => v === 6 * ((i + round) % 1000)));
          checks.push(mine.every((v, i) => v === before[i]));
          const same = await comm.allreduce(mine, "max", { out: mine });
          checks.push(same === mine && mine.every((v, i) => v === 3 * ((i + round) % 1000)));
        }
      }
      return checks;
    });
    for (const checks of got) expect(checks).toEqual(Array.from({ length: 12 }, () => true));
    // An `out` of another kind fails the call on every rank (a call of its own: the abort that
    // ends the group could otherwise reach a rank still finishing the call before).
    const names = await ctx.rc.view(ids).applySync(async () => {
      try {
        await engine.comm.allreduce(new Float64Array(4), "sum", { out: new Float32Array(4), timeout: 10_000 });
        return "no error";
      } catch (err) {
        return (err as { name?: string }).name;
      }
    });
    expect(names).toEqual(ids.map(() => "CommUsageError"));
  });

  it("`ptcluster status --json` reports them", async () => {
    const now = await countsWhen(ctx.rc, (c) => [...c.values()].every((x) => sent(x) > 0));
    const st = JSON.parse(
      (await ptcluster(tmp.dir, ["status", "--json", "--profile", "bytes"])).stdout,
    ) as ClusterStatus;
    for (const e of st.engines) {
      expect(e.link?.comm?.bytesSent).toBeGreaterThanOrEqual(sent(now.get(e.id)));
      expect(e.link?.comm?.bytesReceived).toBeGreaterThanOrEqual(received(now.get(e.id)));
    }
  });
});
