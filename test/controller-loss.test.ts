import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HubLostError, type Client } from "@ptcluster/client";
import { pidAlive } from "@ptcluster/protocol";
import { ptcluster, startTestCluster, tempClusterDir, expectGone, type TestCluster } from "./helpers/cluster.js";

// The controller dies with work pending: every promise settles with HubLostError, and `stop`
// still cleans up every process of the cluster by pid.
describe("controller loss", () => {
  const tmp = tempClusterDir();
  let cluster: TestCluster;
  let rc: Client;

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 2 });
    rc = await cluster.connect();
  });
  afterAll(async () => {
    await rc?.close();
    await expectGone(cluster.pids(), 5_000).catch(() => undefined);
    tmp.cleanup();
  });

  it("pending direct and load-balanced work rejects with HubLostError within a few seconds; stop removes the orphaned engines by pid", async () => {
    const lost: HubLostError[] = [];
    rc.on("hub_lost", (e) => lost.push(e));
    const direct = rc.engine(0).apply(() => new Promise((r) => setTimeout(r, 60_000)));
    const balanced = rc
      .loadBalancedView()
      .map((x: number) => new Promise((r) => setTimeout(() => r(x), 60_000)), [1, 2, 3]);
    await rc.queueStatus(); // both are at the controller
    const t0 = Date.now();
    process.kill(cluster.controllerPid, "SIGKILL");
    const errors = await Promise.all([
      direct.then(
        () => undefined,
        (e: unknown) => e,
      ),
      balanced.then(
        () => undefined,
        (e: unknown) => e,
      ),
    ]);
    const elapsed = Date.now() - t0;
    for (const e of errors) {
      expect(e).toBeInstanceOf(HubLostError);
      expect((e as HubLostError).code).toBe("ERR_PTC_HUB_LOST");
    }
    expect(elapsed).toBeLessThan(8_000);
    expect(lost).toHaveLength(1);
    expect(rc.state).toBe("hub-lost");
    expect(() => rc.view().apply(() => 1)).toThrow(HubLostError);
    // The engines are orphans now; `stop` finds them by pid and removes them.
    expect(cluster.enginePids.every(pidAlive)).toBe(true);
    const r = await ptcluster(tmp.dir, ["stop"]);
    expect(r.exitCode).toBe(0);
    await expectGone(cluster.pids(), 3_000);
  });
});
