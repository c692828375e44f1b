import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineLostError, type Client, type EngineInfo } from "@ptcluster/client";
import { startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

// An engine that freezes (SIGSTOP) is declared dead after missed heartbeats; when it thaws, it is
// taken back under its old id instead of lingering unused.
describe("a frozen engine", () => {
  const tmp = tempClusterDir();
  let cluster: TestCluster;
  let rc: Client;

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 2 });
    rc = await cluster.connect();
  });
  afterAll(async () => {
    for (const pid of cluster.enginePids) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        /* gone */
      }
    }
    await rc?.close();
    await cluster?.stop();
    tmp.cleanup();
  });

  it("is declared dead within the heartbeat window (its task fails with EngineLostError), and re-registers with its id when it thaws", async () => {
    const victim = 1;
    const pid = await rc.engine(victim).apply(() => engine.pid);
    const task = rc.engine(victim).apply(() => new Promise((r) => setTimeout(r, 30_000)));
    await rc.queueStatus();
    const t0 = Date.now();
    process.kill(pid, "SIGSTOP");
    const err = await task.then(() => undefined, (e: unknown) => e);
    const elapsed = Date.now() - t0;
    expect(err).toBeInstanceOf(EngineLostError);
    expect((err as EngineLostError).engineId).toBe(victim);
    // 6 missed heartbeats of 500 ms: about 3 s, within the 5 s the reliability matrix asks for.
    expect(elapsed).toBeGreaterThanOrEqual(2_000);
    expect(elapsed).toBeLessThan(5_000);
    await waitFor(() => !rc.ids.includes(victim), { what: "the frozen engine to leave rc.ids" });
    expect(await rc.view().applySync(() => engine.id)).toEqual([0]);

    const back: EngineInfo[] = [];
    rc.on("engine_up", (e) => back.push(e));
    process.kill(pid, "SIGCONT");
    await waitFor(() => back.some((e) => e.id === victim), { what: "the thawed engine to register again", timeout: 10_000 });
    expect(back.find((e) => e.id === victim)!.pid).toBe(pid);
    expect(rc.ids).toEqual([0, 1]);
    // It came back free: the task it was running when it froze was dropped (it had already failed).
    expect(await rc.engine(victim).apply(() => [engine.id, engine.pid])).toEqual([victim, pid]);
  });
});
