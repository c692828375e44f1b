import { afterAll, describe, expect, it } from "vitest";
import { EngineLostError, type EngineInfo } from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

// An engine that freezes (SIGSTOP) is declared dead after missed heartbeats; when it thaws, it is
// taken back under its old id instead of lingering unused.
describe("a frozen engine", () => {
  const ctx = useCluster({ n: 2 });
  // Registered after useCluster, so it runs before the cluster stops: no engine is left frozen.
  afterAll(() => {
    for (const pid of ctx.cluster.enginePids) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        /* gone */
      }
    }
  });

  it("is declared dead within the heartbeat window (its task fails with EngineLostError), and re-registers with its id when it thaws", async () => {
    const victim = 1;
    const pid = await ctx.rc.engine(victim).apply(() => engine.pid);
    const task = ctx.rc.engine(victim).apply(() => new Promise((r) => setTimeout(r, 30_000)));
    await ctx.rc.queueStatus();
    const t0 = Date.now();
    process.kill(pid, "SIGSTOP");
    const err = await task.then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = Date.now() - t0;
    expect(err).toBeInstanceOf(EngineLostError);
    expect((err as EngineLostError).engineId).toBe(victim);
    // 6 missed heartbeats of 500 ms: about 3 s, within the 5 s the reliability matrix asks for.
    expect(elapsed).toBeGreaterThanOrEqual(2_000);
    expect(elapsed).toBeLessThan(5_000);
    await waitFor(() => !ctx.rc.ids.includes(victim), { what: "the frozen engine to leave rc.ids" });
    expect(await ctx.rc.view().applySync(() => engine.id)).toEqual([0]);

    const back: EngineInfo[] = [];
    ctx.rc.on("engine_up", (e) => back.push(e));
    process.kill(pid, "SIGCONT");
    await waitFor(() => back.some((e) => e.id === victim), {
      what: "the thawed engine to register again",
      timeout: 10_000,
    });
    expect(back.find((e) => e.id === victim)!.pid).toBe(pid);
    expect(ctx.rc.ids).toEqual([0, 1]);
    // It came back free: the task it was running when it froze was dropped (it had already failed).
    expect(await ctx.rc.engine(victim).apply(() => [engine.id, engine.pid])).toEqual([victim, pid]);
  });
});
