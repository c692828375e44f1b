import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import type { Client } from "@ptcluster/client";
import { startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

const root = fileURLToPath(new URL("..", import.meta.url));

// A client that vanishes (killed, no goodbye) takes its unfinished work with it.
describe("client loss", () => {
  const tmp = tempClusterDir();
  let cluster: TestCluster;
  let rc: Client;

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 1, extra: ["--client-timeout", "1500"] });
    rc = await cluster.connect();
  });
  afterAll(async () => {
    await rc?.close();
    await cluster?.stop();
    tmp.cleanup();
  });

  it("a killed client's queued and running tasks are cancelled once it has been silent for --client-timeout; the engine serves others again", async () => {
    const child = execa(process.execPath, ["--import", "tsx", "test/fixtures/vanishing-client.ts"], { cwd: root, env: { PTCLUSTER_DIR: tmp.dir }, reject: false, buffer: false });
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on("data", (d: Buffer) => d.toString().includes("submitted") && resolve());
      child.once("exit", () => reject(new Error("the client exited early")));
    });
    const before = await rc.status();
    expect(before.clients).toBe(2);
    expect(before.tasksInFlight).toBe(20);
    child.kill("SIGKILL");
    await child;
    await waitFor(async () => (await rc.status()).tasksInFlight === 0, { what: "the vanished client's tasks to be cancelled", timeout: 10_000 });
    const after = await rc.status();
    expect(after.clients).toBe(1);
    expect(after.unassigned).toBe(0);
    // The engine is free: a new task runs at once instead of waiting a minute behind the old ones.
    const t0 = Date.now();
    expect(await rc.engine(0).apply(() => "mine")).toBe("mine");
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});
