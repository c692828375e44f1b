import { describe, expect, it } from "vitest";
import { useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

// Many calls at once from one client: no EBUSY from the sockets, no message dropped, every result once.
describe("load", () => {
  const ctx = useCluster({ n: 2 });

  it("100,000 concurrent apply calls (load-balanced and direct, mixed) all return their own result", async () => {
    const lb = ctx.rc.loadBalancedView();
    const echo = (x: number) => x;
    const calls = Array.from({ length: 100_000 }, (_, i) =>
      i % 10 === 0 ? ctx.rc.engine(i % 20 === 0 ? 0 : 1).apply(echo, i) : lb.apply(echo, i),
    );
    const settled = await Promise.allSettled(calls);
    const failed = settled.filter((s) => s.status === "rejected");
    expect(failed).toEqual([]);
    let wrong = 0;
    settled.forEach((s, i) => {
      if (s.status !== "fulfilled" || s.value !== i) wrong++;
    });
    expect(wrong).toBe(0);
    const status = await ctx.rc.status();
    expect(status.tasksInFlight).toBe(0);
    expect(status.unassigned).toBe(0);
    // Nothing refused but copies: building 100,000 calls blocks this event loop for over a second,
    // long enough for the controller to send its first reply again; each refused copy is
    // accounted for by a retransmission on the other side.
    const none = { malformed: 0, badMac: 0, unroutable: 0, overflow: 0 };
    const { replay: clientCopies, ...clientRest } = status.dropped.client;
    const { replay: engineCopies, ...engineRest } = status.dropped.engine;
    expect(clientRest).toEqual(none);
    expect(engineRest).toEqual(none);
    const mine = ctx.rc.connectionStats();
    expect(mine.dropped).toEqual({ ...none, replay: mine.dropped.replay });
    expect(clientCopies).toBeLessThanOrEqual(mine.retransmitted);
    expect(mine.dropped.replay).toBeLessThanOrEqual(status.messages.client.retransmitted);
    // Engines report their retransmissions with their heartbeats.
    await waitFor(
      async () => {
        const engines = (await ctx.rc.status()).engines;
        return engineCopies <= engines.reduce((n, e) => n + (e.link?.retransmitted ?? 0), 0);
      },
      { what: "engine retransmissions to account for every copy the controller refused" },
    );
  }, 60_000);
});
