import { describe, expect, it } from "vitest";
import { useCluster } from "./helpers/cluster.js";

// Many calls at once from one client: no EBUSY from the sockets, no message dropped, every result once.
describe("load", () => {
  const ctx = useCluster({ n: 2 });

  it("100,000 concurrent apply calls (load-balanced and direct, mixed) all return their own result", async () => {
    const lb = ctx.rc.loadBalancedView();
    const echo = (x: number) => x;
    const calls = Array.from({ length: 100_000 }, (_, i) => (i % 10 === 0 ? ctx.rc.engine(i % 20 === 0 ? 0 : 1).apply(echo, i) : lb.apply(echo, i)));
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
    expect(status.dropped.client).toEqual({ malformed: 0, badMac: 0, replay: 0, unroutable: 0 });
    expect(status.dropped.engine).toEqual({ malformed: 0, badMac: 0, replay: 0, unroutable: 0 });
  }, 60_000);
});
