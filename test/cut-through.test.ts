/**
 * Cut-through across hosts (docs/architecture.md, "Large values across hosts";
 * hub/src/tasks/cut-through.ts): every process sends messages of 1 MiB or more in fragments
 * (`PTCLUSTER_FRAGMENT_KB`), the engine and a second client in other network namespaces, shared
 * memory off. A 50 MiB load-balanced task and its 50 MiB result pass through the controller
 * fragment by fragment, each passed on before the message's last fragment came, and arrive
 * intact. A client on a slow link SIGKILLed mid-upload: while its upload streams, other traffic to
 * the same engine goes between its fragments; once the controller gives the client up, the task
 * never ran, the engine dropped the half it had, and the controller holds nothing of it.
 */
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "@ptcluster/client";
import { FRAGMENT_ENV, profilePaths } from "@ptcluster/protocol";
import { BIN, expectGone, startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { createTestNet, netnsUnavailable, type TestNet } from "./helpers/netns.js";
import { waitFor } from "./helpers/wait.js";

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`test/cut-through.test.ts skipped: ${unavailable}`);
const KB = 1024;
const MB = 1024 * KB;
const root = fileURLToPath(new URL("..", import.meta.url));

const rss = (pid: number): number =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * KB;

describe.skipIf(unavailable !== undefined)("cut-through: large load-balanced tasks across hosts", () => {
  const tmp = tempClusterDir();
  let net: TestNet;
  let cluster: TestCluster;
  let rc: Client;
  let fileDir: string;
  let engineId = 0;
  const pids: number[] = [];
  /** Senders on the slow host, killed after the tests if a failing one left them running. */
  const children: Array<{ kill(signal: "SIGKILL"): boolean }> = [];
  const env = { [FRAGMENT_ENV]: "1024", PTCLUSTER_SHM: "0" };

  beforeAll(async () => {
    net = createTestNet(2);
    cluster = await startTestCluster(tmp.dir, {
      n: 0,
      env,
      extra: ["--ip", net.controllerIp, "--no-encryption", "--heartbeat", "250", "--client-timeout", "3000"],
    });
    // This process's client sends in fragments too, and reaches the engine only through the controller.
    Object.assign(process.env, env, { PTCLUSTER_DIRECT: "off" });
    rc = await cluster.connect();
    fileDir = mkdtempSync(join(tmpdir(), "ptc-ct-"));
    copyFileSync(profilePaths("default").engineFile, join(fileDir, "engine.json"));
    const p = net.run(net.hosts[0]!, "env", [
      `${FRAGMENT_ENV}=1024`,
      "PTCLUSTER_SHM=0",
      process.execPath,
      BIN,
      "engine",
      "--file",
      join(fileDir, "engine.json"),
    ]);
    p.catch(() => undefined);
    pids.push(p.pid as number);
    await rc.waitForEngines(1, { timeout: 15_000 });
    engineId = rc.ids[0] as number;
  }, 60_000);

  afterAll(async () => {
    for (const k of [FRAGMENT_ENV, "PTCLUSTER_SHM", "PTCLUSTER_DIRECT"]) delete process.env[k];
    for (const c of children) c.kill("SIGKILL");
    try {
      await rc?.close();
      await cluster?.stop();
      await expectGone(pids, 5_000);
    } finally {
      // Even when a check above fails: namespaces and a bridge left behind would stay on the machine.
      await net?.destroy();
      rmSync(fileDir, { recursive: true, force: true });
      tmp.cleanup();
    }
  });

  /**
   * A client process on `host` that sends one load-balanced task of `bytes` in fragments: returned
   * once its upload streams through the controller (five fragments passed on before its last),
   * with the controller's cut-through counts from before it.
   */
  async function uploading(host: TestNet["hosts"][number], bytes: number) {
    const before = (await rc.status()).cutThrough!;
    const child = net.run(
      host,
      "env",
      [
        `${FRAGMENT_ENV}=1024`,
        "PTCLUSTER_SHM=0",
        `PTCLUSTER_DIR=${tmp.dir}`,
        process.execPath,
        "--import",
        "tsx",
        join(root, "test/fixtures/big-lb-sender.ts"),
        String(bytes),
      ],
      { cwd: root, reject: false, buffer: false, stdin: "ignore" },
    );
    pids.push(child.pid as number);
    children.push(child);
    await waitFor(
      async () => {
        const c = (await rc.status()).cutThrough!;
        return c.open === 1 && c.forwardedEarly - before.forwardedEarly >= 5;
      },
      { what: "the upload to be streaming through the controller", timeout: 20_000, interval: 20 },
    );
    // In an object: the subprocess is a promise of its end, which a bare return would wait for.
    return { child, before };
  }

  it("a 50 MiB task and its result pass through the controller fragment by fragment, intact", async () => {
    const value = randomBytes(50 * MB);
    const want = Buffer.from(value).reverse();
    const before = (await rc.status()).cutThrough!;
    const back = (await rc.loadBalancedView().apply((b: Uint8Array) => b.reverse(), value)) as Uint8Array;
    expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(want)).toBe(true);
    const after = (await rc.status()).cutThrough!;
    // Its argument and its result, each streamed: most of their 50 fragments went on before the last came in.
    expect(after.streams - before.streams).toBe(2);
    expect(after.forwardedEarly - before.forwardedEarly).toBeGreaterThanOrEqual(2 * 40);
    expect(after).toMatchObject({ aborted: before.aborted, open: 0, heldBytes: 0 });
    expect((await rc.status()).retained.tasks).toBe(0);
  }, 60_000);

  it("a client SIGKILLed mid-upload: others' traffic goes between its fragments, its task never runs, nothing is held", async () => {
    const host = net.hosts[1]!;
    // 160 Mbit/s out of the sender's host: its 64 MiB take about three seconds to cross.
    await net.throttle(host, 160);
    const pid = cluster.controllerPid;
    await rc.status({ gc: true });
    const baseline = rss(pid);
    // Placed on its first fragment, its body goes on to the engine as it comes.
    const { child, before } = await uploading(host, 64 * MB);
    // The controller's link to that engine carries the half-sent task, and other messages still go
    // and come back between its fragments: a task through the controller to the same engine.
    expect(await rc.engine(engineId).apply(() => "between")).toBe("between");
    expect((await rc.status()).cutThrough!.open).toBe(1);
    child.kill("SIGKILL");
    await child;
    // Given up after --client-timeout (3 s here: the test's own client must not be given up while it is busy): its stream aborted, the engine told to drop what it had.
    await waitFor(async () => (await rc.status()).cutThrough!.aborted === before.aborted + 1, {
      what: "the upload to be aborted",
      timeout: 10_000,
    });
    const st = await rc.status({ gc: true });
    expect(st.cutThrough).toMatchObject({ open: 0, heldBytes: 0 });
    expect(st.retained.tasks).toBe(0);
    expect(st.tasksInFlight).toBe(0);
    await waitFor(() => rss(pid) - baseline < 12 * MB, {
      what: "the controller's memory to come back",
      timeout: 10_000,
    });
    // The task never ran: the engine never had its argument whole. It is free for the next one.
    expect(await rc.engine(engineId).apply(() => (globalThis as { __bigRuns?: number }).__bigRuns ?? 0)).toBe(0);
    expect(await rc.loadBalancedView().apply((b: Uint8Array) => b.length, new Uint8Array(4 * MB))).toBe(4 * MB);
  }, 60_000);

  it("a task cancelled while its argument streams to its engine never runs there, though the rest of it keeps coming", async () => {
    const host = net.hosts[1]!;
    await net.throttle(host, 160);
    const { child, before } = await uploading(host, 48 * MB);
    // Counted as queued there: sent to the engine, not started.
    const summary = await rc.abort({ engines: [engineId] });
    expect(summary.running + summary.queued).toBe(1);
    // The client sends the rest; the controller drops it instead of passing it on.
    await waitFor(async () => (await rc.status()).cutThrough!.open === 0, {
      what: "the upload to end",
      timeout: 20_000,
    });
    const st = await rc.status();
    expect(st.cutThrough).toMatchObject({ heldBytes: 0, aborted: before.aborted });
    expect(st.retained.tasks).toBe(0);
    // Tasks run in order on the engine: one sent after the upload ended runs after the big one would have.
    expect(await rc.engine(engineId).apply(() => (globalThis as { __bigRuns?: number }).__bigRuns ?? 0)).toBe(0);
    child.kill("SIGKILL");
    await child;
  }, 60_000);

  it("a client whose upload takes longer than --client-timeout is heard from by its fragments, not given up", async () => {
    const host = net.hosts[1]!;
    await net.throttle(host, 160);
    // 80 MiB at 160 Mbit/s: over four seconds, past the 3 s the controller gives a silent client.
    const child = net.run(
      host,
      "env",
      [
        `${FRAGMENT_ENV}=1024`,
        "PTCLUSTER_SHM=0",
        `PTCLUSTER_DIR=${tmp.dir}`,
        process.execPath,
        "--import",
        "tsx",
        join(root, "test/fixtures/big-lb-sender.ts"),
        String(80 * MB),
        "wait",
      ],
      { cwd: root, reject: false, stdin: "ignore" },
    );
    pids.push(child.pid as number);
    children.push(child);
    const { stdout, stderr } = await child;
    expect(`${stdout}\n${stderr}`, "the sender's output").toContain(`done ${80 * MB}`);
    // It ran once, on the remote engine (the earlier senders' tasks never did).
    expect(await rc.engine(engineId).apply(() => (globalThis as { __bigRuns?: number }).__bigRuns ?? 0)).toBe(1);
  }, 60_000);
});
