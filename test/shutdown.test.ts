import { afterEach, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { startTestCluster, tempClusterDir } from "./helpers/cluster.js";
import { running, waitExited } from "./helpers/wait.js";

// `rc.shutdown()` stops the cluster and resolves. The controller answers the request and then
// says on its notification socket that it stops: a client that reads the notice first (its
// event loop was busy while both came) must still take the shutdown for done, not fail it with
// `HubLostError`.
describe("rc.shutdown()", () => {
  let cleanup: (() => void) | undefined;
  afterEach(() => cleanup?.());

  it("resolves when the controller's stop notice is read before its reply", async () => {
    const t = tempClusterDir();
    cleanup = t.cleanup;
    const tc = await startTestCluster(t.dir, { n: 1 });
    const rc = await tc.connect();
    const closed = new Promise<void>((resolve) => rc.once("close", () => resolve()));
    const asked = rc.shutdown();
    // Hold this event loop until the controller has exited: its reply and its notice then both
    // wait unread, and which socket is read first is not up to us (the notice won 4 runs in 5).
    execFileSync("sh", [
      "-c",
      `for i in $(seq 1000); do kill -0 ${tc.controllerPid} 2>/dev/null || exit 0; grep -q '^[0-9]* ([^)]*) Z' /proc/${tc.controllerPid}/stat 2>/dev/null && exit 0; sleep 0.01; done; exit 1`,
    ]);
    await expect(asked).resolves.toBeUndefined();
    await closed;
    expect(rc.state).toBe("closed");
    expect(await waitExited(tc.pids(), 10_000)).toEqual([]);
    expect(running(tc.pids())).toEqual([]);
  });
});
