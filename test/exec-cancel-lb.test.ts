import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CompositeError, type Client } from "@ptcluster/client";
import { tempClusterDir, useCluster } from "./helpers/cluster.js";
import { holdUntilCancelled, scratchDir } from "./helpers/lb.js";
import { range, waitFor } from "./helpers/wait.js";

// A DirectView task on an executor's own link, cancelled within the 20 ms its executor batches
// starts for its supervisor, after a heartbeat had read its start in the executor's table: the
// supervisor held it, stopped it, had its end, then got its start from the batch and held it
// again, as running for good. Its engine then ran no load-balanced task behind it (once they were
// not quick enough to be posted ahead). Short heartbeats make that read likely in each round.

const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

describe("a load-balanced map after a cancelled DirectView map on executor links", () => {
  const ctx = useCluster({ dir: tmp.dir, n: 2, extra: ["--heartbeat", "50"] });
  let rc: Client;
  beforeAll(async () => {
    process.env["PTCLUSTER_DIRECT"] = "exec";
    rc = await ctx.cluster.connect().finally(() => delete process.env["PTCLUSTER_DIRECT"]);
  });
  afterAll(() => rc?.close());

  /** A map's values, or what hung (an engine that holds a finished task runs none of them). */
  const within = (m: PromiseLike<unknown>, what: string) =>
    Promise.race([m, new Promise((r) => setTimeout(() => r(`${what}: hung`), 5_000))]);

  it("runs on both engines, round after round", async () => {
    const [first, second] = rc.ids as [number, number];
    const lb = rc.loadBalancedView();
    for (let round = 0; round < 40; round++) {
      const dir = scratchDir(tmp.dir, `round-${round}-`);
      // Tasks of a few ms: the engines post no load-balanced task ahead of a free slot after them.
      const slow = lb.map(async (x: number) => (await new Promise((r) => setTimeout(r, 8)), x), range(4));
      expect(await within(slow, `round ${round}, first map`)).toEqual(range(4));
      // Blocks [-2, -1, 0] on the first engine, [1, 3, 4] on the second (item 1 holds it until cancelled).
      const m = rc
        .view([first, second])
        .with({ scope: { wd: dir } })
        .map(holdUntilCancelled, [-2, -1, 0, 1, 3, 4]);
      for await (const v of m) {
        expect(v).toBe(-2);
        await waitFor(() => existsSync(join(dir, "busy-1")), { what: "item 1 to start" });
        break;
      }
      expect(await m.catch((e: unknown) => e)).toBeInstanceOf(CompositeError);
      const after = lb.map((x: number) => x, range(5));
      expect(await within(after, `round ${round}, the map after the cancel`)).toEqual(range(5));
    }
  }, 60_000);
});
