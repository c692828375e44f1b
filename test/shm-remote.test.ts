/**
 * Large values across hosts, shared memory off: an engine and a client in other network namespaces
 * started with `PTCLUSTER_SHM=0` (namespaces share /dev/shm, so without it they would rightly find
 * the controller's host token) register without shared memory, and large values of every binary
 * kind reach the engine and come back over TCP on every path: push/pull, direct and load-balanced
 * arguments and results, scatter/gather, shared state (a dict and a queue, written and read by
 * the client and by the engine), and `engine.comm` between engines on two hosts. A client SIGKILLed while a large value is on its way to the
 * controller leaves it holding nothing.
 */
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "@ptcluster/client";
import { profilePaths, type ConnectionInfo } from "@ptcluster/protocol";
import { digest, kinds } from "./helpers/binary-kinds.js";
import { BIN, expectGone, startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { createTestNet, netnsUnavailable, type TestNet } from "./helpers/netns.js";
import { waitFor } from "./helpers/wait.js";

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`test/shm-remote.test.ts skipped: ${unavailable}`);
const KB = 1024;
const MB = 1024 * KB;
const root = fileURLToPath(new URL("..", import.meta.url));

/** The controller's resident memory (bytes), from /proc. */
const rss = (pid: number): number =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * KB;

describe.skipIf(unavailable !== undefined)("large values across namespaces, shared memory off", () => {
  const tmp = tempClusterDir();
  let net: TestNet;
  let cluster: TestCluster;
  let rc: Client;
  let fileDir: string;
  let enginePid = 0;
  const morePids: number[] = [];

  beforeAll(async () => {
    net = createTestNet(3);
    cluster = await startTestCluster(tmp.dir, {
      n: 0,
      extra: ["--ip", net.controllerIp, "--no-encryption", "--shm-threshold-kb", "64", "--client-timeout", "1000"],
    });
    rc = await cluster.connect();
    fileDir = mkdtempSync(join(tmpdir(), "ptc-shmfile-"));
    copyFileSync(profilePaths("default").engineFile, join(fileDir, "engine.json"));
    const p = net.run(
      net.hosts[0]!,
      "env",
      ["PTCLUSTER_SHM=0", process.execPath, BIN, "engine", "--file", join(fileDir, "engine.json")],
      { stdin: "ignore", reject: false },
    );
    enginePid = p.pid as number;
    await rc.waitForEngines(1, { timeout: 15_000 });
  });

  afterAll(async () => {
    await rc?.close();
    await cluster?.stop();
    await expectGone([enginePid, ...morePids], 3_000);
    await net?.destroy();
    if (fileDir) rmSync(fileDir, { recursive: true, force: true });
    tmp.cleanup();
  });

  const shmFiles = () =>
    readdirSync((JSON.parse(readFileSync(profilePaths("default").clientFile, "utf8")) as ConnectionInfo).shm!.dir);

  it("values of every binary kind arrive and come back over the network, on every path", async () => {
    const [info] = (await rc.status()).engines;
    expect(info?.shm).toBeUndefined();
    const id = info!.id;
    // Every kind at 96 KiB, and one value of 3 MiB.
    const value = { ...kinds(5, 96 * KB), large: new Float64Array((3 * MB) / 8).map((_, i) => i / 9) };
    const n = 12 * 96 * KB + 3 * MB;
    const want = digest(value);
    const echo = (v: unknown) => v;
    const sent = (s: ReturnType<Client["connectionStats"]>) => (s.bytesSent ?? 0) + (s.direct?.bytesSent ?? 0);
    const received = (s: ReturnType<Client["connectionStats"]>) =>
      (s.bytesReceived ?? 0) + (s.direct?.bytesReceived ?? 0);
    const before = rc.connectionStats();

    const dv = rc.view([id]);
    await dv.push({ value });
    expect(digest((await dv.pull("value"))[0])).toEqual(want);
    expect(digest(await rc.engine(id).apply(echo, value))).toEqual(want);
    expect(digest(await rc.loadBalancedView().apply(echo, value))).toEqual(want);
    const data = new Float64Array(400_000).map((_, i) => i * 1.5);
    await dv.scatter("part", data);
    expect(digest(await dv.gather("part"))).toEqual(digest(data));
    const big = new BigInt64Array(200_000).map((_, i) => BigInt(i) - 7n);
    await dv.scatter("bigPart", big);
    expect(digest(await dv.gather("bigPart"))).toEqual(digest(big));

    // Shared state: the client writes, the engine reads (and sends what it read back as its
    // result); the engine writes, the client reads; a queue both ways.
    await rc.shared.dict("kinds").set("from-client", value);
    const readByEngine = await rc.engine(id).apply(async () => engine.shared.dict<unknown>("kinds").get("from-client"));
    expect(digest(readByEngine)).toEqual(want);
    await rc.engine(id).apply(async (v: unknown) => engine.shared.dict<unknown>("kinds").set("from-engine", v), value);
    expect(digest(await rc.shared.dict("kinds").get("from-engine"))).toEqual(want);
    await rc.shared.queue("in").put(value);
    await rc.engine(id).apply(async () => {
      const v = await engine.shared.queue<unknown>("in").get({ timeout: 10_000 });
      await engine.shared.queue<unknown>("out").put(v);
    });
    expect(digest(await rc.shared.queue("out").get({ timeout: 10_000 }))).toEqual(want);
    for (const name of ["kinds", "in", "out"]) await rc.shared.delete(name);

    // Every byte went over the links (to the controller, or straight to the engine).
    const after = rc.connectionStats();
    expect(sent(after) - sent(before)).toBeGreaterThan(6 * n);
    expect(received(after) - received(before)).toBeGreaterThan(5 * n);
    expect(shmFiles()).toEqual(["host"]);
  }, 60_000);

  it("engine.comm carries values of every binary kind between engines on two hosts", async () => {
    const [a] = (await rc.status()).engines.map((e) => e.id) as [number];
    const p = net.run(
      net.hosts[2]!,
      "env",
      ["PTCLUSTER_SHM=0", process.execPath, BIN, "engine", "--file", join(fileDir, "engine.json")],
      { stdin: "ignore", reject: false },
    );
    morePids.push(p.pid as number);
    await rc.waitForEngines(2, { timeout: 15_000 });
    const b = (await rc.status()).engines.map((e) => e.id).find((id) => id !== a) as number;
    const value = { ...kinds(7, 96 * KB), large: new Float64Array((3 * MB) / 8).map((_, i) => i / 11) };
    // Rank 0 sends the value to rank 1, which returns what it received and sends it back: both
    // results crossed between the hosts.
    const got = await rc.view([a, b]).apply(async (v: unknown) => {
      const comm = engine.comm!;
      if (comm.rank === 0) {
        await comm.send(1, v);
        return comm.recv({ source: 1, timeout: 20_000 });
      }
      const m = await comm.recv({ source: 0, timeout: 20_000 });
      await comm.send(0, m);
      return m;
    }, value);
    expect(digest(got)).toEqual(digest([value, value]));
    expect((await rc.status()).engines.map((e) => e.shm)).toEqual([undefined, undefined]);
    process.kill(p.pid as number, "SIGTERM");
    await expectGone([p.pid as number], 5_000);
  }, 60_000);

  it("a client SIGKILLed while a large value is on its way to the controller leaves the controller holding nothing", async () => {
    const host = net.hosts[1]!;
    // 160 Mbit/s out of the client's host: its 96 MiB take about five seconds to cross.
    await net.throttle(host, 160);
    const pid = cluster.controllerPid;
    await rc.status({ gc: true });
    const baseline = rss(pid);
    const child = net.run(
      host,
      "env",
      [
        "PTCLUSTER_SHM=0",
        `PTCLUSTER_DIR=${tmp.dir}`,
        process.execPath,
        "--import",
        "tsx",
        join(root, "test/fixtures/big-sender.ts"),
        String(96 * MB),
      ],
      { cwd: root, reject: false, buffer: false, stdin: "ignore" },
    );
    // The controller's memory grows as the value comes in (ZeroMQ fills the message as it reads).
    await waitFor(() => rss(pid) - baseline > 24 * MB, { what: "the value to be on its way", timeout: 20_000 });
    child.kill("SIGKILL");
    await child;
    // Its connection closed, what the controller had of the message is freed: nothing was stored.
    await waitFor(() => rss(pid) - baseline < 12 * MB, {
      what: "the controller's memory to come back",
      timeout: 10_000,
    });
    expect((await rc.status()).shared.bytes).toBe(0);
    expect(await rc.shared.dict("mid").has("big")).toBe(false);
    await rc.shared.delete("mid");
    expect(shmFiles()).toEqual(["host"]);
  }, 60_000);
});
