/**
 * Executors own their engine.comm links (docs/comm-transport.md): a message goes from one
 * executor thread to another without either supervisor on the way, and when an executor is
 * replaced, its peers' links to it fail over to the supervisors' path without losing, repeating
 * or reordering anything, while the new executor dials links of its own again.
 */
import { afterAll, describe, expect, it } from "vitest";
import { tempClusterDir, useCluster } from "./helpers/cluster.js";
import { countsWhen, pingpong } from "./helpers/comm.js";
import { waitFor } from "./helpers/wait.js";

const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

describe("engine.comm on executor links", () => {
  const ctx = useCluster({ n: 2, dir: tmp.dir, profile: "links", extra: ["--heartbeat", "100"] });

  it("carry the messages between executors", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    expect(await ctx.rc.view([a, b]).applySync(pingpong, 30)).toEqual([30, -1]);
    const counts = await countsWhen(ctx.rc, (c) => [a, b].every((id) => (c.get(id)?.executor ?? 0) >= 30));
    const paths = (id: number) => {
      const { direct, relayed, executor } = counts.get(id) ?? {};
      return { direct, relayed, executor };
    };
    expect(paths(a)).toEqual({ direct: 30, relayed: 0, executor: 30 });
    expect(paths(b)).toEqual({ direct: 30, relayed: 0, executor: 30 });
  });

  it("a replaced executor: links to it fail over, nothing lost, repeated or reordered; the new one links again", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    // Links both ways, then b's executor is replaced (a task calls process.exit); a's executor,
    // untouched, still holds its link to the old one.
    const start = (await countsWhen(ctx.rc, (c) => (c.get(b)?.executor ?? -1) >= 0)).get(b)?.executor ?? 0;
    expect(await ctx.rc.view([a, b]).applySync(pingpong, 5)).toEqual([5, -1]);
    await expect(
      ctx.rc
        .engine(b)
        .apply(() => process.exit(1))
        .get(),
    ).rejects.toThrow();
    await waitFor(async () => ((await ctx.rc.status()).engines.find((e) => e.id === b)?.running ?? 1) === 0, {
      what: "engine b to serve again",
    });
    const before = await countsWhen(ctx.rc, (c) => (c.get(b)?.executor ?? 0) >= start + 5);
    const [fromB, got] = await ctx.rc.view([a, b]).applySync(async () => {
      const comm = engine.comm;
      if (comm.rank === 0) {
        for (let i = 0; i < 40; i++) await comm.send(1, i); // into the dead link first
        const all: unknown[] = [];
        for (let i = 0; i < 10; i++) all.push(await comm.recv({ source: 1, timeout: 15_000 }));
        return all;
      }
      const seen: unknown[] = [];
      for (let i = 0; i < 40; i++) seen.push(await comm.recv({ source: 0, timeout: 15_000 }));
      for (let i = 0; i < 9; i++) await comm.send(0, i);
      await comm.send(0, seen);
      return seen.length;
    });
    expect(fromB).toEqual([...Array.from({ length: 9 }, (_, i) => i), Array.from({ length: 40 }, (_, i) => i)]);
    expect(got).toBe(40);
    const after = await countsWhen(ctx.rc, (c) => (c.get(b)?.executor ?? 0) >= (before.get(b)?.executor ?? 0) + 10);
    // b's new executor sent its ten on a link of its own; the network never failed, so nothing took the relay.
    expect((after.get(b)?.executor ?? 0) - (before.get(b)?.executor ?? 0)).toBe(10);
    expect([after.get(a)?.relayed, after.get(b)?.relayed]).toEqual([0, 0]);
  });
});
