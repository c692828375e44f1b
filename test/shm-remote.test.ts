/**
 * Shared memory off across hosts: an engine in another network namespace started with
 * `PTCLUSTER_SHM=0` (namespaces share /dev/shm, so without it the engine would rightly find the
 * controller's host token) registers without shared memory, and large values of every binary kind
 * still reach it and come back, over TCP.
 */
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "@ptcluster/client";
import { profilePaths, type ConnectionInfo } from "@ptcluster/protocol";
import { BIN, expectGone, startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { createTestNet, netnsUnavailable, type TestNet } from "./helpers/netns.js";

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`test/shm-remote.test.ts skipped: ${unavailable}`);
const KB = 1024;

describe.skipIf(unavailable !== undefined)("large values to an engine in another namespace, shared memory off", () => {
  const tmp = tempClusterDir();
  let net: TestNet;
  let cluster: TestCluster;
  let rc: Client;
  let fileDir: string;
  let enginePid = 0;

  beforeAll(async () => {
    net = createTestNet(1);
    cluster = await startTestCluster(tmp.dir, {
      n: 0,
      extra: ["--ip", net.controllerIp, "--no-encryption", "--shm-threshold-kb", "64"],
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
    await expectGone([enginePid], 3_000);
    await net?.destroy();
    if (fileDir) rmSync(fileDir, { recursive: true, force: true });
    tmp.cleanup();
  });

  it("values of every binary kind arrive and come back over the network", async () => {
    const [info] = (await rc.status()).engines;
    expect(info?.shm).toBeUndefined();
    const n = 96 * KB;
    const value = {
      buffer: Buffer.alloc(n, 5),
      u8: new Uint8Array(n).fill(9),
      f64: new Float64Array(n / 8).map((_, i) => i / 7),
      i32: new Int32Array(n / 4).map((_, i) => -i),
      bi64: new BigUint64Array(n / 8).map((_, i) => BigInt(i) << 40n),
      arrayBuffer: new Uint8Array(n).fill(3).buffer,
    };
    const id = info!.id;
    const before = rc.connectionStats();
    await rc.view([id]).push({ value });
    const [pulled] = await rc.view([id]).pull("value");
    const echoed = await rc.loadBalancedView().apply((v: unknown) => v, value);
    const after = rc.connectionStats();
    for (const got of [pulled, echoed] as Array<typeof value>) {
      for (const [k, v] of Object.entries(value)) {
        const g = (got as Record<string, unknown>)[k] as ArrayBufferView | ArrayBuffer;
        expect(Object.prototype.toString.call(g)).toBe(Object.prototype.toString.call(v));
        const bytes = (x: ArrayBufferView | ArrayBuffer) =>
          x instanceof ArrayBuffer ? Buffer.from(x) : Buffer.from(x.buffer, x.byteOffset, x.byteLength);
        expect(bytes(g).equals(bytes(v))).toBe(true);
      }
    }
    // Every byte went over the links (to the controller, or straight to the engine): twice out
    // (push, apply), twice back (pull, result).
    const sent = (s: typeof after) => (s.bytesSent ?? 0) + (s.direct?.bytesSent ?? 0);
    const received = (s: typeof after) => (s.bytesReceived ?? 0) + (s.direct?.bytesReceived ?? 0);
    expect(sent(after) - sent(before)).toBeGreaterThan(2 * 6 * n);
    expect(received(after) - received(before)).toBeGreaterThan(2 * 6 * n);
    const dir = (JSON.parse(readFileSync(profilePaths("default").clientFile, "utf8")) as ConnectionInfo).shm!.dir;
    expect(readdirSync(dir)).toEqual(["host"]);
  });
});
