import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RemoteError } from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { failure, gatedTask, scratchDir, startedOn } from "./helpers/lb.js";
import { waitFor } from "./helpers/wait.js";

/** Runs on an engine: fails on engine 0, succeeds elsewhere with its engine id. */
const failsOnEngine0 = (): number => {
  if (engine.id === 0) throw new Error("engine 0 cannot do this");
  return engine.id;
};

describe("retries go to another engine", () => {
  const ctx = useCluster({ n: 2 });
  const dir = scratchDir();
  afterAll(() => writeFileSync(join(dir, "gate"), ""));

  it("a retry waits for the busy engine it has not failed on instead of going back to the idle one that failed it", async () => {
    const { rc } = ctx;
    // Engine 1 is busy until the gate opens; engine 0 is idle, so the first attempt goes there.
    const held = rc.engine(1).apply(gatedTask, join(dir, "gate"), join(dir, "held"));
    await waitFor(() => startedOn(join(dir, "held")) === 1, { what: "engine 1 to be busy" });
    const ar = rc.loadBalancedView().with({ retries: 1 }).apply(failsOnEngine0);
    // The first attempt failed on engine 0; the retry waits in the queue for engine 1.
    await waitFor(async () => (await rc.queueStatus()).unassigned === 1, { what: "the retry to wait for engine 1" });
    expect(ar.ready()).toBe(false);
    writeFileSync(join(dir, "gate"), "");
    expect(await held).toBe("opened");
    expect(await ar).toBe(1);
    expect(ar.metadata[0]!.attempts).toBe(2);
    expect(ar.metadata[0]!.engineId).toBe(1);
  });

  it("with the only other engine unusable (not a target), the retry goes back to the engine that failed it", async () => {
    const { rc } = ctx;
    const ar = rc.loadBalancedView([0]).with({ retries: 1 }).apply(failsOnEngine0);
    const err = await failure(() => ar);
    expect(err).toBeInstanceOf(RemoteError);
    expect(ar.metadata[0]!.attempts).toBe(2);
    expect(ar.metadata[0]!.engineId).toBe(0);
  });
});
