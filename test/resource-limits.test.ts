import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ResourceLimitError, type Client } from "@ptcluster/client";
import { startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

// A task that exhausts memory fails with a typed error; its engine survives (a fresh executor).
describe("resource limits", () => {
  const tmp = tempClusterDir();
  let cluster: TestCluster;
  let rc: Client;

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 1, extra: ["--max-memory", "64"] });
    rc = await cluster.connect();
  });
  afterAll(async () => {
    await rc?.close();
    await cluster?.stop();
    tmp.cleanup();
  });

  it("a task that exhausts the executor's memory fails with ResourceLimitError; the engine keeps its id and serves the next task", async () => {
    const resets: number[] = [];
    rc.on("engine_reset", (r) => resets.push(r.id));
    const pid = await rc.engine(0).apply(() => engine.pid);
    const err = await rc.engine(0).apply(() => {
      const hog: number[][] = [];
      for (;;) hog.push(new Array(1_000_000).fill(1));
    }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceLimitError);
    expect((err as ResourceLimitError).code).toBe("ERR_PTC_OUT_OF_MEMORY");
    expect((err as ResourceLimitError).engineId).toBe(0);
    expect((err as Error).message).toMatch(/64 MB/);
    await waitFor(() => resets.includes(0), { what: "an engine_reset notice" });
    expect(rc.ids).toEqual([0]);
    expect(await rc.engine(0).apply(() => [engine.id, engine.pid])).toEqual([0, pid]);
    // Through the load-balanced view too: the error comes back, it is not retried onto other engines.
    const lbErr = await rc.loadBalancedView().apply(() => {
      const hog: string[] = [];
      for (;;) hog.push("x".repeat(1 << 20) + hog.length);
    }).then(() => undefined, (e: unknown) => e);
    expect(lbErr).toBeInstanceOf(ResourceLimitError);
    expect(await rc.loadBalancedView().apply(() => 42)).toBe(42);
  });
});
