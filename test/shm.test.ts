/**
 * Same-host data through shared memory (docs/architecture.md, "Same-host data"): large binary
 * values of every kind travel as files in the cluster's private folder on /dev/shm, with only a
 * tagged reference over ZeroMQ (the client's link carries a few hundred bytes, not the values);
 * a tampered file is refused before the task runs; nothing is left after stop or after SIGKILL of
 * a client, an engine or the controller.
 */
import { execa } from "execa";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Client } from "@ptcluster/client";
import { profilePaths, type ConnectionInfo } from "@ptcluster/protocol";
import { expectGone, ptcluster, startTestCluster, tempClusterDir, useCluster } from "./helpers/cluster.js";
import { digest, kinds } from "./helpers/binary-kinds.js";
import { waitFor } from "./helpers/wait.js";

declare const big: Uint8Array;
const root = fileURLToPath(new URL("..", import.meta.url));
const KB = 1024;

/** The folder the controller advertised in the client connection file. */
const shmDir = (profile = "default"): string =>
  (JSON.parse(readFileSync(profilePaths(profile).clientFile, "utf8")) as ConnectionInfo).shm!.dir;
/** The value files in it (the host token aside). */
const files = (dir: string): string[] => readdirSync(dir).filter((f) => f !== "host");

/** Bytes the client's links (to the controller, and straight to engines) sent and received during `fn`. */
async function linkBytes<T>(rc: Client, fn: () => Promise<T>): Promise<{ value: T; sent: number; received: number }> {
  const total = () => {
    const s = rc.connectionStats();
    return {
      sent: (s.bytesSent ?? 0) + (s.direct?.bytesSent ?? 0),
      received: (s.bytesReceived ?? 0) + (s.direct?.bytesReceived ?? 0),
    };
  };
  const before = total();
  const value = await fn();
  const after = total();
  return { value, sent: after.sent - before.sent, received: after.received - before.received };
}

describe("same-host values through shared memory", () => {
  const ctx = useCluster({ n: 2, extra: ["--shm-threshold-kb", "64"] });

  it("the controller's folder is private and its engines say they share it", async () => {
    const dir = shmDir();
    expect(dir.startsWith("/dev/shm/")).toBe(true);
    expect(readdirSync(dir)).toEqual(["host"]);
    const st = await ctx.rc.status();
    expect(st.engines.map((e) => e.shm)).toEqual([true, true]);
  });

  it("push and pull carry every binary kind to both engines of a DirectView by reference", async () => {
    const dv = ctx.rc.view();
    const value = kinds(1);
    const push = await linkBytes(ctx.rc, () => dv.push({ big: value }));
    // Eleven values of 80 KiB each, to two engines: about 1.8 MB over the network without shared memory.
    expect(push.sent).toBeLessThan(20 * KB);
    const pull = await linkBytes(ctx.rc, () => dv.pull("big"));
    expect(pull.received).toBeLessThan(20 * KB);
    expect(digest(pull.value)).toEqual(digest([value, value]));
    const types = await dv.apply(() => Object.values(big).map((v) => Object.prototype.toString.call(v)));
    expect(types[0]).toEqual(Object.values(value).map((v) => Object.prototype.toString.call(v)));
    expect(files(shmDir())).toEqual([]);
  });

  it("task arguments and results of direct and load-balanced calls, and scatter/gather, go by reference", async () => {
    const value = kinds(2);
    const echo = (v: Record<string, unknown>) => v;
    const direct = await linkBytes(ctx.rc, () => ctx.rc.engine(1).apply(echo, value));
    expect(digest(direct.value)).toEqual(digest(value));
    expect(direct.sent + direct.received).toBeLessThan(20 * KB);
    const lb = ctx.rc.loadBalancedView();
    const balanced = await linkBytes(ctx.rc, () => Promise.all([lb.apply(echo, value), lb.apply(echo, kinds(3))]));
    expect(digest(balanced.value)).toEqual(digest([value, kinds(3)]));
    expect(balanced.sent + balanced.received).toBeLessThan(20 * KB);
    const items = [1, 2, 3, 4].map((k) => new Float64Array(10 * KB).fill(k));
    const mapped = await linkBytes(ctx.rc, async () => lb.map((x: Float64Array) => x.map((v) => v * 2), items));
    expect(digest(mapped.value)).toEqual(digest(items.map((x) => x.map((v) => v * 2))));
    expect(mapped.sent + mapped.received).toBeLessThan(20 * KB);
    const data = new Float64Array(40_000).map((_, i) => i * 1.5);
    const dv = ctx.rc.view();
    const sg = await linkBytes(ctx.rc, async () => {
      await dv.scatter("part", data);
      return dv.gather("part");
    });
    expect(digest(sg.value)).toEqual(digest(data));
    expect(sg.sent + sg.received).toBeLessThan(20 * KB);
    expect(files(shmDir())).toEqual([]);
  });

  it("shared state's large values of every kind, from a client and from an engine, come back intact; the controller holds them, no file", async () => {
    // The controller owns shared values (it must keep their bytes), so they travel to it over the
    // network: files would cost the controller a copy and a tag as a socket does (shared_dict_50MB).
    const value = kinds(6);
    const want = digest(value);
    const d = ctx.rc.shared.dict("kinds");
    await d.set("from-client", value);
    expect((await ctx.rc.status()).shared.bytes).toBeGreaterThan(11 * 80 * KB);
    expect(digest(await ctx.rc.engine(0).apply(async () => engine.shared.dict("kinds").get("from-client")))).toEqual(
      want,
    );
    await ctx.rc.engine(1).apply(async (v: unknown) => engine.shared.dict("kinds").set("from-engine", v), value);
    expect(digest(await d.get("from-engine"))).toEqual(want);
    await ctx.rc.shared.queue("kinds-q").put(value);
    await ctx.rc.engine(1).apply(async () => {
      const q = engine.shared.queue("kinds-q");
      await q.put(await q.get({ timeout: 10_000 }));
    });
    expect(digest(await ctx.rc.shared.queue("kinds-q").get({ timeout: 10_000 }))).toEqual(want);
    for (const name of ["kinds", "kinds-q"]) await ctx.rc.shared.delete(name);
    expect((await ctx.rc.status()).shared.bytes).toBe(0);
    expect(files(shmDir())).toEqual([]);
  });

  it("PTCLUSTER_SHM=0 keeps one client off the path: its data and its results travel over the network", async () => {
    process.env["PTCLUSTER_SHM"] = "0";
    const rc = await ctx.cluster.connect().finally(() => delete process.env["PTCLUSTER_SHM"]);
    try {
      const value = kinds(5);
      const r = await linkBytes(rc, () => rc.engine(0).apply((v: unknown) => v, value));
      expect(digest(r.value)).toEqual(digest(value));
      expect(r.sent).toBeGreaterThan(800 * KB);
      expect(r.received).toBeGreaterThan(800 * KB);
      expect(files(shmDir())).toEqual([]);
    } finally {
      await rc.close();
    }
  });

  it("a load-balanced retry on another engine reads the same file again; it goes once the task is over", async () => {
    const marker = join(ctx.dir, "retry.first");
    const failsFirst = (m: string, data: Float64Array) => {
      const fs = require("node:fs") as typeof import("node:fs");
      if (!fs.existsSync(m)) {
        fs.writeFileSync(m, String(engine.id));
        throw new Error("first attempt fails");
      }
      return data.reduce((a, b) => a + b, 0);
    };
    const data = new Float64Array(32 * KB).fill(0.5);
    const ar = ctx.rc.loadBalancedView().with({ retries: 1 }).apply(failsFirst, marker, data);
    expect(await ar).toBe(16 * KB);
    expect(ar.metadata[0]!.attempts).toBe(2);
    expect(String(ar.metadata[0]!.engineId)).not.toBe(readFileSync(marker, "utf8"));
    expect(files(shmDir())).toEqual([]);
  });

  it("a large result kept for a client that left reaches the client that fetches it, and its file goes", async () => {
    const gate = join(ctx.dir, "kept.gate");
    const other = await ctx.cluster.connect();
    const ar = other.loadBalancedView().apply(async (g: string) => {
      const fs = require("node:fs") as typeof import("node:fs");
      fs.writeFileSync(`${g}.started`, "");
      while (!fs.existsSync(g)) await new Promise((r) => setTimeout(r, 5));
      return new Float64Array(128 * 1024).map((_, i) => i / 2);
    }, gate);
    const [msgId] = ar.msgIds;
    // Started: a client that says goodbye has only its unstarted tasks cancelled.
    await waitFor(() => existsSync(`${gate}.started`), { what: "the task to start" });
    // It leaves politely: its running task goes on, its result is kept for rc.getResult.
    await other.close();
    writeFileSync(gate, "");
    await waitFor(async () => (await ctx.rc.status()).retained.resultBytes >= 128 * KB * 8, {
      what: "the result and its bytes to be kept",
    });
    // The file was written for the client that left: the controller read it in, nothing waits in the folder.
    expect(files(shmDir())).toEqual([]);
    const got = (await ctx.rc.getResult(msgId as string).get(10_000)) as Float64Array;
    expect(digest(got)).toEqual(digest(new Float64Array(128 * KB).map((_, i) => i / 2)));
  });

  it("a tampered file is refused with ERR_PTC_SHM_TAMPERED and the task never runs", async () => {
    const dir = shmDir();
    const gate = join(ctx.dir, "tamper.gate");
    const marker = join(ctx.dir, "tamper.ran");
    const e0 = ctx.rc.engine(0);
    // Holds engine 0, so the next task's file waits to be read.
    const holding = e0.apply(async (g: string) => {
      const fs = require("node:fs") as typeof import("node:fs");
      while (!fs.existsSync(g)) await new Promise((r) => setTimeout(r, 5));
    }, gate);
    const victim = e0.apply(
      (m: string, data: Buffer) => require("node:fs").writeFileSync(m, String(data.length)),
      marker,
      Buffer.alloc(256 * KB, 1),
    );
    // Written in full: the value and its 16-byte tag (the file is made at once, filled after the task is sent).
    const complete = () => files(dir).filter((f) => statSync(join(dir, f)).size === 256 * KB + 16);
    const [file] = await waitFor(() => (complete().length === 1 ? complete() : undefined), {
      what: "the argument's shared-memory file",
    });
    const path = join(dir, file as string);
    const bytes = readFileSync(path);
    bytes[1000] = 2;
    writeFileSync(path, bytes);
    writeFileSync(gate, "");
    await holding;
    const err = await victim.then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(err?.message).toMatch(/ShmTamperedError|was refused/);
    expect(JSON.stringify(err)).toMatch(/ERR_PTC_SHM_TAMPERED/);
    expect(existsSync(marker)).toBe(false);
    expect(files(dir)).toEqual([]);
    // The engine goes on serving.
    expect(await e0.apply((b: Buffer) => b.length, Buffer.alloc(256 * KB))).toBe(256 * KB);
  });
});

/** Holds engine `id` (concurrency 1) until `gate` exists, then pushes a value that waits for it in a file. */
async function waitingFile(rc: Client, id: number, gate: string, dir: string) {
  const held = rc.engine(id).apply(async (g: string) => {
    const fs = require("node:fs") as typeof import("node:fs");
    while (!fs.existsSync(g)) await new Promise((r) => setTimeout(r, 5));
  }, gate);
  const pushed = rc.engine(id).push({ big: Buffer.alloc(512 * KB, id) });
  held.catch(() => undefined);
  pushed.catch(() => undefined);
  await waitFor(() => files(dir).length === 1, { what: `the file waiting for engine ${id}` });
  return { held, pushed };
}

describe("nothing is left behind", () => {
  it("after SIGKILL of a client, and of an engine", async () => {
    const tmp = tempClusterDir();
    const cluster = await startTestCluster(tmp.dir, {
      n: 2,
      extra: ["--shm-threshold-kb", "64", "--client-timeout", "1000"],
    });
    const dir = shmDir();
    let rc: Client | undefined;
    try {
      // A client killed while its pushed value waits in a file for a busy engine: its files go once it is declared gone.
      const child = execa(
        process.execPath,
        ["--import", "tsx", "test/fixtures/shm-client.ts", join(tmp.dir, "never")],
        { cwd: root, env: { PTCLUSTER_DIR: tmp.dir }, reject: false, buffer: false },
      );
      await new Promise<void>((resolve, reject) => {
        child.stdout?.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
        child.once("exit", () => reject(new Error("the client exited early")));
      });
      await waitFor(() => files(dir).length === 1, { what: "the pushed value's file" });
      child.kill("SIGKILL");
      await child;
      await waitFor(() => files(dir).length === 0, { what: "the killed client's file to go", timeout: 10_000 });

      // An engine killed with a value waiting for it.
      rc = await cluster.connect();
      const { held, pushed } = await waitingFile(rc, 1, join(tmp.dir, "engine.gate"), dir);
      // Engine 1's own pid: engines register in whatever order they start, not in launch order.
      process.kill(rc.engineInfo(1)!.pid, "SIGKILL");
      await expect(held).rejects.toMatchObject({ code: "ERR_PTC_ENGINE_LOST" });
      await expect(pushed).rejects.toMatchObject({ code: "ERR_PTC_ENGINE_LOST" });
      await waitFor(() => files(dir).length === 0, { what: "the dead engine's file to go", timeout: 10_000 });
    } finally {
      await rc?.close();
      await cluster.stop();
      tmp.cleanup();
    }
    expect(existsSync(dir)).toBe(false);
  });

  it("after SIGKILL of the controller: the next start sweeps the folder, `ptcluster stop` removes it", async () => {
    const tmp = tempClusterDir();
    try {
      const first = await startTestCluster(tmp.dir, { n: 1, extra: ["--shm-threshold-kb", "64"] });
      const dir = shmDir();
      const rc = await first.connect();
      await waitingFile(rc, 0, join(tmp.dir, "gate"), dir);
      // The whole first cluster crashes (its engine would otherwise wait out its orphan timeout).
      process.kill(first.controllerPid, "SIGKILL");
      for (const pid of first.enginePids) process.kill(pid, "SIGKILL");
      await expectGone(first.pids(), 5_000);
      await rc.close();
      // A new controller of the same cluster, while the killed one's file is still there.
      expect(files(dir)).toHaveLength(1);
      const second = await startTestCluster(tmp.dir, { n: 1, extra: ["--shm-threshold-kb", "64"] });
      expect(readdirSync(dir)).toEqual(["host"]);
      const rc2 = await second.connect();
      await waitingFile(rc2, second.ids[0] as number, join(tmp.dir, "gate2"), dir);
      process.kill(second.controllerPid, "SIGKILL");
      await rc2.close();
      writeFileSync(join(tmp.dir, "gate2"), "");
      expect(files(dir)).toHaveLength(1);
      await second.stop();
      expect(existsSync(dir)).toBe(false);
    } finally {
      await ptcluster(tmp.dir, ["stop"]);
      tmp.cleanup();
    }
  });

  it("with --shm-threshold-kb 0 there is no folder and values travel over the network", async () => {
    const tmp = tempClusterDir();
    const cluster = await startTestCluster(tmp.dir, { n: 1, extra: ["--shm-threshold-kb", "0"] });
    const rc = await cluster.connect();
    try {
      const info = JSON.parse(readFileSync(profilePaths("default").clientFile, "utf8")) as ConnectionInfo;
      expect(info.shm).toBeUndefined();
      const value = kinds(4);
      const r = await linkBytes(rc, () => rc.engine(0).apply((v: unknown) => v, value));
      expect(digest(r.value)).toEqual(digest(value));
      expect(r.sent).toBeGreaterThan(800 * KB);
    } finally {
      await rc.close();
      await cluster.stop();
      tmp.cleanup();
    }
  });
});
