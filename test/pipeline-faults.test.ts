import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HubLostError, type Client } from "@ptcluster/client";
import { pidAlive } from "@ptcluster/protocol";
import { expectGone, startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { failure } from "./helpers/lb.js";

/** Runs on an engine: about 15 ms of work, then the item and the engine that ran it. */
const work = async (x: number): Promise<[number, number]> => {
  await new Promise((r) => setTimeout(r, 15));
  return [x, engine.id];
};

// An engine SIGKILLed mid-pipeline costs no item and duplicates none; the controller going away
// fails a running pipeline with HubLostError.
describe("pipelines: engine and controller loss", () => {
  const tmp = tempClusterDir();
  let cluster: TestCluster;
  let rc: Client;

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 3 });
    rc = await cluster.connect();
    await rc.waitForEngines(3);
  });
  afterAll(async () => {
    await rc?.close();
    await expectGone(cluster.pids(), 5_000).catch(() => undefined);
    tmp.cleanup();
  });

  it("an engine SIGKILLed mid-stage: every output comes exactly once, in order", async () => {
    const n = 150;
    const victim = cluster.enginePids[1] as number;
    const victimId = (await rc.status()).engines.find((e) => e.pid === victim)?.id;
    expect(victimId).toBeDefined();
    const out: Array<[number, number]> = [];
    const p = rc
      .pipeline(
        Array.from({ length: n }, (_, i) => i),
        { maxInFlight: 64 },
      )
      .map(work)
      .map(([x, e]: [number, number]) => [x, e] as [number, number]);
    for await (const v of p) {
      out.push(v);
      if (out.length === 20) process.kill(victim, "SIGKILL");
    }
    expect(pidAlive(victim)).toBe(false);
    expect(out.map(([x]) => x)).toEqual(Array.from({ length: n }, (_, i) => i));
    // The victim ran items before it died, and the survivors ran the rest.
    expect(out.slice(0, 20).some(([, e]) => e === victimId)).toBe(true);
    expect(out.slice(-40).every(([, e]) => e !== victimId)).toBe(true);
    expect(p.stats()[0]?.done).toBe(n);
  });

  it("the controller shutting down fails a running pipeline with HubLostError, promptly", async () => {
    const p = rc.pipeline([1, 2, 3]).map((x: number) => new Promise((r) => setTimeout(() => r(x), 30_000)), {});
    const settled = failure(() => p.toArray());
    await rc.queueStatus();
    const other = await cluster.connect();
    const t0 = Date.now();
    await other.shutdown();
    const err = await settled;
    expect(err).toBeInstanceOf(HubLostError);
    expect(Date.now() - t0).toBeLessThan(3_000);
    await expectGone(cluster.pids(), 5_000);
  });
});
