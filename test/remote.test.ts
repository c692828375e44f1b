/**
 * Engines on other hosts, over TCP with CURVE: hosts are network namespaces on a bridge (see
 * helpers/netns.ts), the controller binds the bridge's address. Engines started by hand with a
 * copied connection file, link cuts shorter and longer than the heartbeat window, and the ssh
 * launcher against a real OpenSSH server inside a namespace.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execaSync } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "@ptcluster/client";
import { profilePaths } from "@ptcluster/protocol";
import { BIN, expectGone, ptcluster, startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import {
  createTestNet,
  netnsUnavailable,
  startSshd,
  type NetHost,
  type TestNet,
  type TestSshd,
} from "./helpers/netns.js";
import { lines, scratchDir } from "./helpers/lb.js";
import { range, waitFor } from "./helpers/wait.js";

declare const wd: string;
declare const hold: number;

const unavailable = netnsUnavailable();
const noSshd = (() => {
  try {
    // `sshd -V` exits non-zero (it has no such flag before OpenSSH 9.8), so only a missing binary counts.
    if (!existsSync("/usr/sbin/sshd")) throw new Error("no sshd");
    execaSync("ssh", ["-V"]);
    return undefined;
  } catch {
    return "OpenSSH (ssh, sshd) not installed (Debian's openssh-server and openssh-client; .ci/run installs them)";
  }
})();
if (unavailable) console.warn(`test/remote.test.ts skipped: ${unavailable}`);
else if (noSshd) console.warn(`test/remote.test.ts: ssh launcher tests skipped: ${noSshd}`);

/** A task for maps: logs each run (engine id) into `wd/item-i`, holds `hold` ms, returns i * 2. */
const logged = async (i: number) => {
  const fs = require("node:fs") as typeof import("node:fs");
  fs.appendFileSync(`${wd}/item-${i}`, `${engine.id}\n`);
  const until = Date.now() + hold;
  while (Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  return i * 2;
};

describe.skipIf(unavailable !== undefined)("remote engines over TCP (hosts in network namespaces)", () => {
  const tmp = tempClusterDir();
  let net: TestNet;
  let cluster: TestCluster;
  let rc: Client;
  const engines: Array<{ pid: number; host: NetHost; done: Promise<unknown> }> = [];
  let fileDir: string;
  const downs: Array<{ id: number; reason: string }> = [];
  const ups: number[] = [];

  /** Starts `ptcluster engine --file` by hand inside a host, with its own host name. */
  const engineOn = (host: NetHost, name: string) => {
    const p = net.run(
      host,
      "unshare",
      [
        "--uts",
        "sh",
        "-c",
        `hostname ${name} && exec "${process.execPath}" "${BIN}" engine --file "${join(fileDir, "engine.json")}"`,
      ],
      { stdin: "ignore", reject: false },
    );
    engines.push({ pid: p.pid as number, host, done: p });
    return p;
  };

  beforeAll(async () => {
    net = createTestNet(3);
    // A fixed engine port, as a firewall between hosts would need (on the test bridge's address only).
    cluster = await startTestCluster(tmp.dir, {
      n: 0,
      extra: ["--ip", net.controllerIp, "--curve", "--engine-port", "47311"],
    });
    rc = await cluster.connect();
    rc.on("engine_down", (d) => downs.push(d));
    rc.on("engine_up", (e) => ups.push(e.id));
    // "After copying the file": the engine connection file, moved to another directory, owner-only.
    fileDir = mkdtempSync(join(tmpdir(), "ptc-hostfile-"));
    copyFileSync(profilePaths("default").engineFile, join(fileDir, "engine.json"));
  });

  afterAll(async () => {
    await rc?.close();
    await cluster?.stop();
    // Engines of other hosts are not signalled by pid: the controller told them to stop.
    await expectGone(
      engines.map((e) => e.pid),
      3_000,
    );
    await net?.destroy();
    if (fileDir) rmSync(fileDir, { recursive: true, force: true });
    tmp.cleanup();
  });

  it("engines started by hand on two hosts register over TCP with CURVE; status shows their hosts", async () => {
    expect(cluster.ids).toEqual([]);
    const file = JSON.parse(readFileSync(join(fileDir, "engine.json"), "utf8")) as {
      host: string;
      port: number;
      curve?: unknown;
    };
    expect([file.host, file.port, typeof file.curve]).toEqual([net.controllerIp, 47311, "object"]);
    expect(statSync(join(fileDir, "engine.json")).mode & 0o777).toBe(0o600);
    // Each engine process is watched through `engines`; its exit is awaited in afterAll.
    void engineOn(net.hosts[0]!, "hostb");
    void engineOn(net.hosts[1]!, "hostc");
    await rc.waitForEngines(2, { timeout: 15_000 });
    const st = await rc.status();
    expect(st.engines.map((e) => e.host).sort()).toEqual(["hostb", "hostc"]);
    // The controller sees them coming from their own addresses, not loopback.
    const where = await rc.view().applySync(() => ({ host: require("node:os").hostname() as string, id: engine.id }));
    expect(where.map((w) => w.host).sort()).toEqual(["hostb", "hostc"]);
    const text = await ptcluster(tmp.dir, ["status"]);
    expect(text.stdout).toMatch(/hostb/);
    expect(text.stdout).toMatch(/hostc/);
  });

  it("a load-balanced map runs on both hosts", async () => {
    const dir = scratchDir(tmp.dir, "map-");
    const out = await rc.loadBalancedView().map(logged, range(40), { chunkSize: 1, scope: { wd: dir, hold: 5 } });
    expect(out).toEqual(range(40).map((i) => i * 2));
    const by = new Set(range(40).flatMap((i) => lines(join(dir, `item-${i}`))));
    expect(by.size).toBe(2);
  });

  it("engines on both hosts share state through the controller (CURVE, authenticated): a queue drained into a dict, values of every structured-clone kind", async () => {
    const jobs = rc.shared.queue<number>("remote-jobs");
    await jobs.putMany(range(200));
    await jobs.close();
    const taken = await rc.view().apply(async () => {
      const q = engine.shared.queue<number>("remote-jobs");
      const seen = engine.shared.dict<string>("remote-seen");
      let n = 0;
      for await (const x of q) {
        await seen.set(String(x), engine.host);
        n++;
      }
      return [engine.host, n] as const;
    });
    expect(taken.reduce((a, [, n]) => a + n, 0)).toBe(200);
    const seen = await rc.shared.dict<string>("remote-seen").entries();
    expect(seen).toHaveLength(200);
    expect(new Set(seen.map(([, host]) => host))).toEqual(new Set(["hostb", "hostc"]));
    // Values keep their kind (structured clone) from a client to an engine on another host and back.
    const value = {
      n: 1.5,
      big: 2n ** 70n,
      s: "text",
      d: new Date(86_400_000),
      re: /x+/gi,
      m: new Map<string, unknown>([["k", new Set([1, 2])]]),
      bytes: new Uint8Array([1, 2, 3]),
      floats: new Float64Array(300).fill(0.5),
      nested: [null, undefined, true, { deep: [1] }],
    };
    await rc.shared.dict("remote-kinds").set("v", value);
    const roundTrip = await rc.engine(rc.ids[0] as number).apply(async () => {
      const d = engine.shared.dict("remote-kinds");
      await d.set("back", await d.get("v"));
      return engine.host;
    });
    expect(roundTrip).toMatch(/^host[bc]$/);
    expect(await rc.shared.dict("remote-kinds").get("back")).toEqual(value);
    for (const name of ["remote-jobs", "remote-seen", "remote-kinds"]) await rc.shared.delete(name);
  });

  it("a link cut shorter than the heartbeat window is invisible: no engine declared dead, nothing runs twice", async () => {
    const dir = scratchDir(tmp.dir, "short-");
    const victim = (await rc.status()).engines.find((e) => e.host === "hostb")!;
    const downsBefore = downs.length;
    const N = 40;
    const m = rc.loadBalancedView().map(logged, range(N), { chunkSize: 1, scope: { wd: dir, hold: 60 } });
    // Cut while the victim is working.
    await waitFor(() => range(N).some((i) => lines(join(dir, `item-${i}`)).includes(String(victim.id))), {
      what: "a task on the victim",
    });
    await net.cut(net.hosts[0]!, 1_000);
    const out: number[] = [];
    for await (const v of m) out.push(v);
    expect(out).toEqual(range(N).map((i) => i * 2));
    expect(downs.length).toBe(downsBefore);
    for (const i of range(N)) expect(lines(join(dir, `item-${i}`)), `runs of item ${i}`).toHaveLength(1);
    expect(rc.ids).toContain(victim.id);
  });

  it("a longer cut declares the engine dead, moves its tasks, ignores its late results, and it registers again when the link returns", async () => {
    const dir = scratchDir(tmp.dir, "long-");
    const victim = (await rc.status()).engines.find((e) => e.host === "hostb")!;
    const N = 30;
    const m = rc.loadBalancedView().map(logged, range(N), { chunkSize: 1, scope: { wd: dir, hold: 100 } });
    await waitFor(() => range(N).some((i) => lines(join(dir, `item-${i}`)).includes(String(victim.id))), {
      what: "a task on the victim",
    });
    const cutAt = Date.now();
    await net.link(net.hosts[0]!, false);
    try {
      await waitFor(() => downs.some((d) => d.id === victim.id), {
        timeout: 10_000,
        what: "the cut-off engine to be declared dead",
      });
      // Six missed 500 ms heartbeats: about 3 s, well within the 5 s the issue allows.
      expect(Date.now() - cutAt).toBeLessThan(5_000);
    } finally {
      await net.link(net.hosts[0]!, true);
    }
    const out: number[] = [];
    for await (const v of m) out.push(v);
    // One result per item, all correct: the victim's late results (if any) were ignored.
    expect(out).toEqual(range(N).map((i) => i * 2));
    const moved = range(N).filter((i) => lines(join(dir, `item-${i}`)).length === 2);
    // A moved item ran on the cut-off engine (which, not knowing, runs on through its queue; that
    // result was ignored) and again on the other engine, or on the same one once it registered
    // again. In either order: under load the other engine can reach a moved item before the
    // victim works down its queue to it.
    for (const i of moved)
      expect(lines(join(dir, `item-${i}`)), `runs of moved item ${i}`).toContain(String(victim.id));
    expect(moved.length).toBeGreaterThanOrEqual(1);
    // The engine hears the controller again and registers anew, under its id.
    await waitFor(() => rc.ids.includes(victim.id), { timeout: 15_000, what: "the engine to register again" });
    expect(ups.filter((id) => id === victim.id).length).toBeGreaterThanOrEqual(2);
    const again = await rc.engine(victim.id).applySync(() => require("node:os").hostname() as string);
    expect(again).toBe("hostb");
  });

  it("--location advertises another address than the one bound (NAT, wildcard binds); engines use it", async () => {
    const nat = await startTestCluster(tmp.dir, {
      profile: "nat",
      n: 0,
      extra: ["--ip", "0.0.0.0", "--location", net.controllerIp, "--curve"],
    });
    const dir = mkdtempSync(join(tmpdir(), "ptc-natfile-"));
    try {
      const paths = profilePaths("nat");
      for (const f of [paths.clientFile, paths.engineFile])
        expect((JSON.parse(readFileSync(f, "utf8")) as { host: string }).host).toBe(net.controllerIp);
      copyFileSync(paths.engineFile, join(dir, "engine.json"));
      const p = net.run(net.hosts[1]!, process.execPath, [BIN, "engine", "--file", join(dir, "engine.json")], {
        stdin: "ignore",
        reject: false,
      });
      engines.push({ pid: p.pid as number, host: net.hosts[1]!, done: p });
      const nrc = await nat.connect();
      try {
        await nrc.waitForEngines(1, { timeout: 15_000 });
        expect(await nrc.view().applySync(() => 6 * 7)).toEqual([42]);
      } finally {
        await nrc.close();
      }
    } finally {
      await nat.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe.skipIf(noSshd !== undefined)("ssh launcher", () => {
    const sshTmp = { profile: "ssh" };
    let sshd: TestSshd;
    let sc: TestCluster;
    let src: Client;
    let host: NetHost;
    let stopped = false;

    beforeAll(async () => {
      host = net.hosts[2]!;
      sshd = await startSshd(net, host);
      sc = await startTestCluster(tmp.dir, {
        profile: sshTmp.profile,
        restart: true,
        n: 2,
        extra: [
          "--engines",
          "ssh",
          "--hosts",
          `${host.ip}:2`,
          "--ip",
          net.controllerIp,
          "--curve",
          `--ssh-options=${sshd.sshOptions}`,
        ],
      });
      src = await sc.connect();
    });
    afterAll(async () => {
      if (!stopped) {
        await src?.close();
        await sc?.stop();
      }
      // Nothing of the cluster is left on the remote host: only sshd runs in its namespace.
      const left = execaSync("ip", ["netns", "pids", host.ns])
        .stdout.split("\n")
        .filter(Boolean)
        .map(Number)
        .filter((p) => {
          try {
            return !execaSync("cat", [`/proc/${p}/cmdline`]).stdout.includes("sshd");
          } catch {
            return false;
          }
        });
      await expectGone(left, 3_000);
      await sshd?.stop();
    });

    it("starts engines over ssh; the connection file travels on the session, not on the remote disk", async () => {
      expect(sc.ids).toEqual([0, 1]);
      // The launch processes here are the ssh clients.
      for (const pid of sc.enginePids)
        expect(execaSync("cat", [`/proc/${pid}/cmdline`]).stdout.split("\0")[0]).toMatch(/ssh$/);
      const info = await src.view().applySync(() => ({
        ssh: process.env["SSH_CONNECTION"],
        argv: (require("node:fs") as typeof import("node:fs")).readFileSync("/proc/self/cmdline", "utf8").split("\0"),
      }));
      for (const i of info) {
        expect(i.ssh).toMatch(
          new RegExp(`${net.controllerIp.replace(/\./g, "\\.")} \\d+ ${host.ip.replace(/\./g, "\\.")} 22`),
        );
        expect(i.argv[i.argv.indexOf("--file") + 1]).toBe("-");
      }
      const out = await src.loadBalancedView().map((x: number) => x + 1, range(50));
      expect(out).toEqual(range(50).map((x) => x + 1));
    });

    it("an engine that dies is seen at once (its ssh session ends) and replaced on the same host", async () => {
      const before = await src.status();
      const victim = before.engines[0]!;
      const gone: Array<{ id: number; reason: string }> = [];
      src.on("engine_down", (d) => gone.push(d));
      const t0 = Date.now();
      process.kill(victim.pid, "SIGKILL");
      await waitFor(() => gone.some((d) => d.id === victim.id), { timeout: 5_000, what: "engine_down" });
      // Through the launcher, not the heartbeat window (3 s).
      expect(Date.now() - t0).toBeLessThan(2_000);
      expect(gone.find((d) => d.id === victim.id)!.reason).toMatch(/launch ended/);
      await waitFor(() => src.ids.length === 2 && !src.ids.includes(victim.id), {
        timeout: 15_000,
        what: "a replacement engine",
      });
      const hosts = await src.view().applySync(() => process.env["SSH_CONNECTION"]?.split(" ")[2]);
      expect(hosts).toEqual([host.ip, host.ip]);
    });

    it("`ptcluster engines -n 1` adds an engine over ssh to the running cluster", async () => {
      const r = await ptcluster(tmp.dir, ["engines", "-n", "1", "--profile", sshTmp.profile, "--json"]);
      expect(r.stderr).toBe("");
      const { ids } = JSON.parse(r.stdout) as { ids: number[] };
      expect(ids).toHaveLength(1);
      await waitFor(() => src.ids.includes(ids[0]!), { what: "the new engine in rc.ids" });
      expect(await src.engine(ids[0]!).applySync(() => process.env["SSH_CONNECTION"]?.split(" ")[2])).toBe(host.ip);
    });

    it("when the controller is killed, `ptcluster stop` ends the ssh sessions and the remote engines exit at once", async () => {
      const remote = (await src.status()).engines.map((e) => e.pid);
      expect(remote.length).toBeGreaterThanOrEqual(2);
      await src.close();
      process.kill(sc.controllerPid, "SIGKILL");
      const t0 = Date.now();
      const r = await ptcluster(tmp.dir, ["stop", "--profile", sshTmp.profile]);
      expect(r.exitCode).toBe(0);
      // Their lifeline (the ssh session) is gone: well before the 30 s orphan timeout.
      await expectGone(remote, 5_000);
      expect(Date.now() - t0).toBeLessThan(8_000);
      stopped = true;
    });

    it("refuses ssh engines for a controller bound to loopback, before starting anything", async () => {
      const r = await ptcluster(tmp.dir, [
        "start",
        "--profile",
        "ssh-loop",
        "--engines",
        "ssh",
        "--hosts",
        `${host.ip}:1`,
      ]);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/cannot reach a controller bound to 127\.0\.0\.1/);
      // Nothing was started for that profile.
      const listed = await ptcluster(tmp.dir, ["list", "--json"]);
      expect(listed.stdout).not.toMatch(/ssh-loop/);
    });
  });
});
