import { describe, expect, it } from "vitest";
import { ResourceLimitError } from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

// A task that exhausts memory fails with a typed error; its engine survives (a fresh executor).
describe("resource limits", () => {
  const ctx = useCluster({ n: 1, extra: ["--max-memory", "64"] });

  it("a task that exhausts the executor's memory fails with ResourceLimitError; the engine keeps its id and serves the next task", async () => {
    const resets: number[] = [];
    ctx.rc.on("engine_reset", (r) => resets.push(r.id));
    const pid = await ctx.rc.engine(0).apply(() => engine.pid);
    const err = await ctx.rc
      .engine(0)
      .apply(() => {
        const hog: number[][] = [];
        for (;;) hog.push(new Array(1_000_000).fill(1));
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ResourceLimitError);
    expect((err as ResourceLimitError).code).toBe("ERR_PTC_OUT_OF_MEMORY");
    expect((err as ResourceLimitError).engineId).toBe(0);
    expect((err as Error).message).toMatch(/64 MB/);
    await waitFor(() => resets.includes(0), { what: "an engine_reset notice" });
    expect(ctx.rc.ids).toEqual([0]);
    expect(await ctx.rc.engine(0).apply(() => [engine.id, engine.pid])).toEqual([0, pid]);
    // Through the load-balanced view too: the error comes back, it is not retried onto other engines.
    const lbErr = await ctx.rc
      .loadBalancedView()
      .apply(() => {
        const hog: string[] = [];
        for (;;) hog.push("x".repeat(1 << 20) + hog.length);
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(lbErr).toBeInstanceOf(ResourceLimitError);
    expect(await ctx.rc.loadBalancedView().apply(() => 42)).toBe(42);
  });
});
