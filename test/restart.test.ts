import { describe, expect, it } from "vitest";
import type { EngineInfo } from "@ptcluster/client";
import { pidAlive } from "@ptcluster/protocol";
import { useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

// `ptcluster start` supervises the engines it launched: one that dies is replaced, with a new id.
describe("engine replacement", () => {
  const ctx = useCluster({ n: 2, restart: true });

  it("an engine killed with SIGKILL is replaced by a new engine with a new id; the client sees it come and go", async () => {
    const ups: EngineInfo[] = [];
    const downs: number[] = [];
    ctx.rc.on("engine_up", (e) => ups.push(e));
    ctx.rc.on("engine_down", (d) => downs.push(d.id));
    const victim = ctx.rc.ids[0]!;
    const pid = await ctx.rc.engine(victim).apply(() => engine.pid);
    process.kill(pid, "SIGKILL");
    await waitFor(() => downs.includes(victim) && ups.length === 1, {
      what: "engine_down for the victim and one engine_up",
      timeout: 10_000,
    });
    const replacement = ups[0]!;
    expect(replacement.id).toBe(2);
    expect(replacement.pid).not.toBe(pid);
    expect(pidAlive(replacement.pid)).toBe(true);
    expect(ctx.rc.ids).toEqual([1, 2]);
    expect(await ctx.rc.view().applySync(() => engine.id)).toEqual([1, 2]);
    // `stop` knows the replacement's pid too (checked by the fixture's stop: nothing left behind).
    ctx.cluster.enginePids.push(replacement.pid);
  });
});
