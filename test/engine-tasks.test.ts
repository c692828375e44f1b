import { describe, expect, it } from "vitest";
import { TaskTimeoutError } from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

describe("an engine's task flow with two slots (--concurrency 2)", () => {
  const ctx = useCluster({ n: 1, extra: ["--concurrency", "2"] });

  it("a task that never yields keeps its slot-mate from starting: only it shows as running, and the other runs on the fresh executor", async () => {
    const id = ctx.rc.ids[0]!;
    const lb = ctx.rc.loadBalancedView([id]);
    const spin = lb.with({ timeout: 1_500 }).apply(function neverYields() {
      const end = Date.now() + 30_000;
      while (Date.now() < end) {
        /* holds the executor's thread: nothing else on it can start */
      }
      return "spun";
    });
    const blocked = lb.apply(function blockedBehind() {
      return 2;
    });
    // The executor reports each start before the task's code runs: the second task was handed
    // over with a free slot, but never started, and the engine must not claim it did.
    const seen = await waitFor(
      async () => {
        const e = (await ctx.rc.status()).engines.find((x) => x.id === id);
        return e && e.current.length > 0 ? e : undefined;
      },
      { what: "the spinning task shown running" },
    );
    expect(seen.current.map((c) => c.fn)).toEqual(["neverYields"]);
    expect(seen.queued).toBe(1);
    await expect(spin).rejects.toBeInstanceOf(TaskTimeoutError);
    // Not started, so not lost with the executor: it runs on the new one.
    expect(await blocked).toBe(2);
  });
});
