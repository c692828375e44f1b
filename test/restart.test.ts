import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client, EngineInfo } from "@ptcluster/client";
import { pidAlive } from "@ptcluster/protocol";
import { startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

// `ptcluster start` supervises the engines it launched: one that dies is replaced, with a new id.
describe("engine replacement", () => {
  const tmp = tempClusterDir();
  let cluster: TestCluster;
  let rc: Client;

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 2, restart: true });
    rc = await cluster.connect();
  });
  afterAll(async () => {
    await rc?.close();
    await cluster?.stop();
    tmp.cleanup();
  });

  it("an engine killed with SIGKILL is replaced by a new engine with a new id; the client sees it come and go", async () => {
    const ups: EngineInfo[] = [];
    const downs: number[] = [];
    rc.on("engine_up", (e) => ups.push(e));
    rc.on("engine_down", (d) => downs.push(d.id));
    const victim = rc.ids[0]!;
    const pid = await rc.engine(victim).apply(() => engine.pid);
    process.kill(pid, "SIGKILL");
    await waitFor(() => downs.includes(victim) && ups.length === 1, { what: "engine_down for the victim and one engine_up", timeout: 10_000 });
    const replacement = ups[0]!;
    expect(replacement.id).toBe(2);
    expect(replacement.pid).not.toBe(pid);
    expect(pidAlive(replacement.pid)).toBe(true);
    expect(rc.ids).toEqual([1, 2]);
    expect(await rc.view().applySync(() => engine.id)).toEqual([1, 2]);
    // `stop` knows the replacement's pid too (checked by the fixture's stop: nothing left behind).
    cluster.enginePids.push(replacement.pid);
  });
});
