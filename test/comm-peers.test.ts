/**
 * engine.comm's paths (docs/comm-transport.md): engines send to each other over direct peer
 * sockets when they reach each other, through the controller when they do not (or with --curve).
 * The path each message took is read from the engines' own counters (`rc.status()` →
 * `engines[].link.comm`, sent with their heartbeats), on real processes and sockets.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execaSync } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import type { Client } from "@ptcluster/client";
import { ptcluster, tempClusterDir, useCluster } from "./helpers/cluster.js";
import { netnsUnavailable, useNetCluster, type NetHost } from "./helpers/netns.js";
import { waitFor } from "./helpers/wait.js";
import { scratchDir } from "./helpers/lb.js";
import { countsWhen, pingpong } from "./helpers/comm.js";

const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

describe("engine.comm between engines of one host", () => {
  const ctx = useCluster({ n: 2, dir: tmp.dir, profile: "peers" });

  it("takes the direct path: no message goes through the controller", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    expect(await ctx.rc.view([a, b]).applySync(pingpong, 50)).toEqual([50, -1]);
    // A collective too: every rank sends to several peers, each over its own link.
    expect(await ctx.rc.view([b, a]).applySync(() => engine.comm.allreduce(engine.id + 1, "sum"))).toEqual([
      a + b + 2,
      a + b + 2,
    ]);
    const counts = await countsWhen(ctx.rc, (c) => [a, b].every((id) => (c.get(id)?.direct ?? 0) >= 51));
    expect(counts.get(a)?.relayed).toBe(0);
    expect(counts.get(b)?.relayed).toBe(0);
  });
});

describe("engine.comm with --curve", () => {
  const ctx = useCluster({ n: 2, dir: tmp.dir, profile: "peers-curve", extra: ["--curve"] });

  it("goes direct too, over CURVE (each peer endpoint's server key comes with its address)", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    expect(await ctx.rc.view([a, b]).applySync(pingpong, 20)).toEqual([20, -1]);
    const counts = await countsWhen(ctx.rc, (c) => [a, b].every((id) => (c.get(id)?.direct ?? 0) >= 20));
    expect([counts.get(a)?.relayed, counts.get(b)?.relayed]).toEqual([0, 0]);
    // Executor links are plain TCP (signed, not encrypted): with CURVE, every message stays on the CURVE sockets.
    expect([counts.get(a)?.executor, counts.get(b)?.executor]).toEqual([0, 0]);
  });
});

describe("engine.comm with PTCLUSTER_COMM_PATH=relay", () => {
  const ctx = useCluster({ n: 2, dir: tmp.dir, profile: "peers-relay", env: { PTCLUSTER_COMM_PATH: "relay" } });

  it("takes the controller's relay for every message", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    expect(await ctx.rc.view([a, b]).applySync(pingpong, 20)).toEqual([20, -1]);
    const counts = await countsWhen(ctx.rc, (c) => [a, b].every((id) => (c.get(id)?.relayed ?? 0) >= 20));
    expect([counts.get(a)?.direct, counts.get(b)?.direct]).toEqual([0, 0]);
    expect([counts.get(a)?.executor, counts.get(b)?.executor]).toEqual([0, 0]);
    // `ptcluster status` shows the counts too, once messages were sent.
    const r = await ptcluster(tmp.dir, ["status", "--profile", "peers-relay"]);
    const [header, ...rows] = r.stdout.split("\n").filter((l) => /^(ID|\d)/.test(l));
    expect(header).toMatch(/COMM DIRECT\/RELAYED$/);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(Number(/ 0\/(\d+)$/.exec(row)?.[1])).toBeGreaterThanOrEqual(20);
  });

  it("counts the bytes of the values it relays, sent and received", async () => {
    const [a, b] = ctx.cluster.ids as [number, number];
    const before = await countsWhen(ctx.rc, (c) => [a, b].every((id) => c.get(id)?.bytesSent !== undefined));
    const sums = await ctx.rc.view([a, b]).applySync(async () => {
      const { comm } = engine;
      const peer = 1 - comm.rank;
      await comm.send(peer, new Float64Array(1024).fill(comm.rank + 1));
      return ((await comm.recv({ source: peer, timeout: 10_000 })) as Float64Array).reduce((x, y) => x + y, 0);
    });
    expect(sums).toEqual([2048, 1024]);
    const after = await countsWhen(ctx.rc, (c) =>
      [a, b].every((id) => (c.get(id)?.bytesReceived ?? 0) >= (before.get(id)?.bytesReceived ?? 0) + 8192),
    );
    for (const id of [a, b]) {
      // One 8 KiB frame each way and its value's header (its message's header is not counted on this path).
      const out = (after.get(id)?.bytesSent ?? 0) - (before.get(id)?.bytesSent ?? 0);
      const got = (after.get(id)?.bytesReceived ?? 0) - (before.get(id)?.bytesReceived ?? 0);
      expect(out).toBeGreaterThanOrEqual(8192);
      expect(out).toBeLessThan(8192 + 256);
      expect(got).toBe(out);
    }
  });
});

describe("--peer-ip", () => {
  it("an address that is not this host's fails the engine's start with a message that says what to give", async () => {
    const r = await ptcluster(tmp.dir, [
      "engine",
      "--url",
      "tcp://127.0.0.1:9",
      "--key",
      "0".repeat(64),
      "--peer-ip",
      "203.0.113.9",
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/Cannot bind the engine\.comm peer endpoint on 203\.0\.113\.9 .*--peer-ip/);
  });
});

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`test/comm-peers.test.ts: network namespace tests skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("engine.comm between hosts (network namespaces)", () => {
  const ctx = useNetCluster(tmp.dir);

  it("an engine whose endpoint the other cannot reach gets its messages through the controller; its own go direct", async () => {
    // Engine a advertises its host's address (the one it reaches the controller from); engine b
    // binds its peer endpoint on its namespace's own loopback, which a cannot reach.
    const a = await ctx.engineOn(ctx.net.hosts[0] as NetHost, []);
    const b = await ctx.engineOn(ctx.net.hosts[1] as NetHost, ["--peer-ip", "127.0.0.1"]);
    await executorsUp(ctx.rc, [a, b]);
    expect(await ctx.rc.view([a, b]).applySync(pingpong, 30)).toEqual([30, -1]);
    const counts = await countsWhen(ctx.rc, (c) => (c.get(a)?.relayed ?? 0) >= 30 && (c.get(b)?.direct ?? 0) >= 30);
    // a → b: the hello found nobody, so the relay, for every message; b → a: direct across hosts.
    expect(counts.get(a)?.direct).toBe(0);
    expect(counts.get(b)?.relayed).toBe(0);
    // b's executor sent them on its own link, to a's executor.
    expect(counts.get(b)?.executor).toBe(30);
  });

  it("a direct link cut mid-call falls back to the relay: every message arrives once and in order", async () => {
    // Engine d binds its peer endpoint on a second address of its host; c reaches it directly
    // until that address is removed (the controller link, on the first address, stays up).
    const host = ctx.net.hosts[1] as NetHost;
    const second = host.ip.replace(/\.(\d+)$/, (_, n: string) => `.${Number(n) + 100}`);
    execaSync("ip", ["-n", host.ns, "addr", "add", `${second}/24`, "dev", host.dev]);
    const c = await ctx.engineOn(ctx.net.hosts[0] as NetHost, []);
    const d = await ctx.engineOn(host, ["--peer-ip", second]);
    await executorsUp(ctx.rc, [c, d]);
    const dir = scratchDir(tmp.dir, "cut-");
    const call = ctx.rc.view([c, d]).applySync(async (wd: string) => {
      const fs = require("node:fs") as typeof import("node:fs");
      const comm = engine.comm;
      if (comm.rank === 0) {
        for (let i = 0; i < 10; i++) await comm.send(1, i);
        while (!fs.existsSync(`${wd}/cut`)) await new Promise((r) => setTimeout(r, 5));
        for (let i = 10; i < 20; i++) await comm.send(1, i);
        return await comm.recv({ source: 1, timeout: 20_000 });
      }
      const got: unknown[] = [];
      for (let i = 0; i < 20; i++) {
        got.push(await comm.recv({ source: 0, timeout: 20_000 }));
        if (got.length === 10) fs.writeFileSync(`${wd}/half`, "");
      }
      await comm.send(0, got);
      return got.length;
    }, dir);
    await waitFor(() => existsSync(join(dir, "half")), { what: "the first ten messages, direct" });
    execaSync("ip", ["-n", host.ns, "addr", "del", `${second}/24`, "dev", host.dev]);
    writeFileSync(join(dir, "cut"), "");
    expect(await call).toEqual([Array.from({ length: 20 }, (_, i) => i), 20]);
    const counts = await countsWhen(ctx.rc, (m) => (m.get(c)?.relayed ?? 0) >= 10);
    expect(counts.get(c)?.direct).toBe(20);
    // Sent on c's executor's own link (the ten after the cut never acknowledged there, then resent by relay).
    expect(counts.get(c)?.executor).toBe(20);
  });
});

/**
 * Waits until the engines' executors run tasks, so their endpoints are bound: a peer's hello
 * answer waits only half a second for a starting executor's address, and a route chosen without it
 * stays on the supervisors' path for that executor's life (which these tests do not measure).
 */
async function executorsUp(rc: Client, ids: number[]): Promise<void> {
  expect(await rc.view(ids).applySync(() => engine.id)).toEqual(ids);
}
