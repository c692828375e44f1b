import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { HubLostError, type Client } from "@ptcluster/client";
import { ptcluster, startTestCluster, tempClusterDir, expectGone, type TestCluster } from "./helpers/cluster.js";
import { jsonLines } from "./helpers/json-lines.js";

const root = fileURLToPath(new URL("..", import.meta.url));
// One cluster directory for the file (it sets PTCLUSTER_DIR), a profile per cluster.
const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

/** Resolves with the event's arguments the next time `rc` emits it; fails after `ms`. */
function nextEvent(rc: Client, event: "hub_lost" | "reconnected", ms: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    rc.once(event, (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

const rejection = (p: PromiseLike<unknown>) =>
  Promise.resolve(p).then(
    () => undefined,
    (e: unknown) => e,
  );

// The controller freezes (SIGSTOP: a stuck process, a link cut for a while) past the client's
// limit, then answers again: the client's pending work fails in bounded time, and when the
// controller is back the client connects again by itself.
describe("a controller that is lost for a while, then answers again", () => {
  let cluster: TestCluster;
  let rc: Client;

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 2, profile: "freeze" });
    rc = await cluster.connect();
  });
  afterAll(async () => {
    process.kill(cluster.controllerPid, "SIGCONT");
    await rc?.close();
    await cluster.stop();
  });

  it("pending calls fail with HubLostError and calls meanwhile at once; once it answers, the client connects again and everything made before works", async () => {
    const dv = rc.view();
    const counts = rc.shared.dict<number>("freeze");
    await counts.set("before", 1);
    // Held by this session: ended with it when the client connects again under a new id.
    const held = await rc.shared.lock("freeze-lock").acquire({ timeout: 5_000 });
    void held;
    const oldId = rc.id;
    const slow = rc.engine(0).apply(
      () =>
        new Promise((resolve) => {
          const t = setTimeout(resolve, 60_000);
          engine.signal?.addEventListener("abort", () => clearTimeout(t));
        }),
    );
    const waiting = rc.shared.queue<number>("freeze-q").get({ timeout: 60_000 });
    await rc.queueStatus(); // both are at the controller

    const lost = nextEvent(rc, "hub_lost", 15_000);
    process.kill(cluster.controllerPid, "SIGSTOP");
    const t0 = Date.now();
    try {
      const [err] = (await lost) as [HubLostError];
      expect(err).toBeInstanceOf(HubLostError);
      expect(err.message).toMatch(/connects again by itself/);
      for (const e of await Promise.all([rejection(slow), rejection(waiting)])) expect(e).toBeInstanceOf(HubLostError);
      expect(Date.now() - t0).toBeLessThan(12_000);
      expect(rc.state).toBe("hub-lost");
      expect(() => dv.apply(() => 1)).toThrow(HubLostError);
      await expect(counts.get("before")).rejects.toBeInstanceOf(HubLostError);
    } finally {
      process.kill(cluster.controllerPid, "SIGCONT");
    }

    await nextEvent(rc, "reconnected", 15_000);
    expect(rc.state).toBe("connected");
    expect(rc.id).not.toBe(oldId);
    expect(rc.ids).toEqual(cluster.ids);
    // The view and the shared objects made before the loss serve the new connection.
    expect(await dv.applySync(() => engine.id)).toEqual(cluster.ids);
    expect(await counts.get("before")).toBe(1);
    // The old session ended when the new one connected: its lock is free and its task was
    // cancelled (engine 0 runs one task at a time), not left to the client timeout (30 s).
    const again = await rc.shared.lock("freeze-lock").acquire({ timeout: 5_000 });
    await again.release();
    expect(
      await rc
        .engine(0)
        .with({ timeout: 10_000 })
        .applySync(() => "free"),
    ).toBe("free");
  });
});

// Waiting for a controller that never comes back holds nothing: a script whose work is done ends.
describe("a client whose controller is gone for good", () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 1, profile: "gone" });
  });
  afterAll(async () => {
    await ptcluster(tmp.dir, ["stop", "--profile", "gone"]);
    await expectGone(cluster.pids(), 5_000);
  });

  it("lets its script exit after its last line", async () => {
    const child = execa(process.execPath, ["--import", "tsx", "test/fixtures/idle-client.ts", "hub-lost", "gone"], {
      cwd: root,
      env: { PTCLUSTER_DIR: tmp.dir },
      reject: false,
      timeout: 30_000,
      stdin: "ignore",
      buffer: { stdout: false },
    });
    const { next } = jsonLines<Record<string, unknown>>(child);
    await next("ready");
    process.kill(cluster.controllerPid, "SIGKILL");
    const { last } = (await next("last")) as { last: number; lost: string };
    const run = await child;
    expect(run.timedOut, "the script did not exit by itself").toBe(false);
    expect(run.exitCode).toBe(0);
    expect(Date.now() - last).toBeLessThan(3_000);
  });
});
