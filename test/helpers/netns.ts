/**
 * Hosts on one machine for remote-engine tests: network namespaces joined to a bridge in the
 * test's own namespace by veth pairs. The controller binds the bridge's address; each "host" has
 * its own address, its own loopback, and a link the test can cut (`ip link set … down`). Only
 * addresses inside 10.231.0.0/16 on these links are used: a /24 per test process, so that two test
 * files running at once (vitest's workers) never put the same address on two bridges.
 */
import { execa, execaSync, type Options, type ResultPromise } from "execa";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@ptcluster/client";
import { profilePaths } from "@ptcluster/protocol";
import { afterAll, beforeAll } from "vitest";
import { BIN, expectGone, startTestCluster, type TestCluster } from "./cluster.js";

/** This test process's /24 (the bridges of two processes with one address would take each other's traffic). */
const SUBNET = `10.231.${process.pid % 250}`;

/** Why namespace tests cannot run here, or undefined if they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root";
  const probe = `ptcprobe${process.pid}`;
  try {
    execaSync("ip", ["netns", "add", probe]);
    execaSync("ip", ["netns", "del", probe]);
    return undefined;
  } catch (err) {
    return `cannot create a network namespace (${(err as Error).message.split("\n")[0]}); install iproute2 and run as root`;
  }
}

export interface NetHost {
  /** Namespace name. */
  ns: string;
  /** Its address on the test network. */
  ip: string;
  /** The interface inside the namespace. */
  dev: string;
}

export interface TestNet {
  /** The controller's address (the bridge, in the test's namespace). */
  controllerIp: string;
  hosts: NetHost[];
  /** Runs a command inside a host's namespace. */
  run(host: NetHost, cmd: string, args: string[], options?: Options): ResultPromise;
  /** Takes a host's link down, or brings it back. */
  link(host: NetHost, up: boolean): Promise<void>;
  /** Cuts a host's link for `ms`, then restores it. */
  cut(host: NetHost, ms: number): Promise<void>;
  /** Holds what a host sends to `mbit` Mbit/s (a token bucket on its link), so a large upload takes seconds. */
  throttle(host: NetHost, mbit: number): Promise<void>;
  /** Kills every process left in the namespaces, then removes them, the bridge and the veths. */
  destroy(): Promise<void>;
}

function sh(cmd: string, args: string[]): void {
  execaSync(cmd, args, { stdin: "ignore" });
}

/** Creates `count` hosts (namespaces) on a bridge with the controller's address. */
export function createTestNet(count: number): TestNet {
  const tag = (process.pid % 100_000).toString(36);
  const bridge = `ptcbr${tag}`;
  // A namespace left by a crashed run would hold the same names: clear them first.
  for (let i = 0; i < count; i++) execaSync("ip", ["netns", "del", `ptc${tag}h${i}`], { reject: false });
  execaSync("ip", ["link", "del", bridge], { reject: false });
  sh("ip", ["link", "add", bridge, "type", "bridge"]);
  sh("ip", ["addr", "add", `${SUBNET}.1/24`, "dev", bridge]);
  sh("ip", ["link", "set", bridge, "up"]);
  const hosts: NetHost[] = [];
  for (let i = 0; i < count; i++) {
    const ns = `ptc${tag}h${i}`;
    const outer = `ptc${tag}v${i}`;
    const ip = `${SUBNET}.${i + 2}`;
    sh("ip", ["netns", "add", ns]);
    sh("ip", ["link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    sh("ip", ["link", "set", outer, "master", bridge]);
    sh("ip", ["link", "set", outer, "up"]);
    sh("ip", ["-n", ns, "addr", "add", `${ip}/24`, "dev", "eth0"]);
    sh("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    hosts.push({ ns, ip, dev: "eth0" });
  }
  const net: TestNet = {
    controllerIp: `${SUBNET}.1`,
    hosts,
    run: (host, cmd, args, options) => execa("ip", ["netns", "exec", host.ns, cmd, ...args], options ?? {}),
    link: async (host, up) => {
      await execa("ip", ["-n", host.ns, "link", "set", host.dev, up ? "up" : "down"]);
    },
    cut: async (host, ms) => {
      await net.link(host, false);
      await new Promise((r) => setTimeout(r, ms));
      await net.link(host, true);
    },
    throttle: async (host, mbit) => {
      const tbf = ["root", "tbf", "rate", `${mbit}mbit`, "burst", "64kb", "latency", "500ms"];
      await net.run(host, "tc", ["qdisc", "replace", "dev", host.dev, ...tbf]);
    },
    destroy: async () => {
      for (const h of hosts) {
        const pids = execaSync("ip", ["netns", "pids", h.ns], { reject: false })
          .stdout.split("\n")
          .filter(Boolean)
          .map(Number);
        for (const p of pids) {
          try {
            process.kill(p, "SIGKILL");
          } catch {
            /* gone */
          }
        }
        execaSync("ip", ["netns", "del", h.ns], { reject: false });
      }
      execaSync("ip", ["link", "del", bridge], { reject: false });
    },
  };
  return net;
}

export interface TestSshd {
  /** `--ssh-options` for ptcluster: the test's key, no host-key prompts. */
  sshOptions: string;
  stop(): Promise<void>;
}

/**
 * An OpenSSH server inside a host's namespace, on port 22 of its address, accepting a key made
 * for this test (root login by key only), with its own config, host key and pid file.
 */
export async function startSshd(net: TestNet, host: NetHost): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), "ptc-sshd-"));
  chmodSync(dir, 0o700);
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
  sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "id")]);
  writeFileSync(join(dir, "authorized_keys"), execaSync("cat", [join(dir, "id.pub")]).stdout + "\n", { mode: 0o600 });
  writeFileSync(
    join(dir, "sshd_config"),
    [
      `ListenAddress ${host.ip}`,
      "Port 22",
      `HostKey ${join(dir, "host_key")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "LogLevel ERROR",
    ].join("\n") + "\n",
  );
  const server = net.run(host, "/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], {
    stdin: "ignore",
    reject: false,
  });
  const sshOptions = `-i ${join(dir, "id")} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5`;
  // Ready when a login works.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await execa("ssh", [...sshOptions.split(" "), "-o", "BatchMode=yes", host.ip, "true"], {
      reject: false,
      stdin: "ignore",
    });
    if (r.exitCode === 0) break;
    if (Date.now() > deadline || server.exitCode !== null) {
      server.kill("SIGKILL");
      throw new Error(`sshd in ${host.ns} did not accept a login: ${r.stderr}`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  return {
    sshOptions,
    stop: async () => {
      server.kill("SIGTERM");
      await server;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `ptcluster engine` started by hand on `host`, for the cluster `rc` is connected to (its pid goes
 * into `pids`, for the test to see gone); resolves with its id once registered.
 */
export async function engineOnHost(
  net: TestNet,
  rc: Client,
  host: NetHost,
  extra: string[],
  pids: number[],
): Promise<number> {
  const before = new Set((await rc.status()).engines.map((e) => e.id));
  const p = net.run(host, process.execPath, [BIN, "engine", "--file", profilePaths("default").engineFile, ...extra], {
    stdin: "ignore",
    reject: false,
  });
  pids.push(p.pid as number);
  await rc.waitForEngines(before.size + 1, { timeout: 15_000 });
  return (await rc.status()).engines.map((e) => e.id).find((id) => !before.has(id)) as number;
}

/** What {@link useNetCluster} gives the tests of a `describe`. */
export interface NetCluster {
  readonly net: TestNet;
  readonly rc: Client;
  /** `ptcluster engine` on `host`, stopped with the cluster; resolves with its id once registered. */
  engineOn(host: NetHost, extra: string[]): Promise<number>;
}

/**
 * Two hosts and a cluster whose controller binds their bridge, with no engines of its own (tests
 * start them on the hosts), made before the calling `describe`'s tests and removed after them,
 * every process checked gone. A short heartbeat: links are given up after 6 periods without
 * acknowledgements.
 */
export function useNetCluster(dir: string): NetCluster {
  let net: TestNet | undefined;
  let cluster: TestCluster | undefined;
  let rc: Client | undefined;
  const pids: number[] = [];
  beforeAll(async () => {
    net = createTestNet(2);
    cluster = await startTestCluster(dir, {
      n: 0,
      extra: ["--ip", net.controllerIp, "--no-encryption", "--heartbeat", "250"],
    });
    rc = await cluster.connect();
  });
  afterAll(async () => {
    await rc?.close();
    await cluster?.stop();
    await expectGone(pids, 3_000);
    await net?.destroy();
  });
  return {
    get net() {
      return net as TestNet;
    },
    get rc() {
      return rc as Client;
    },
    engineOn: (host, extra) => engineOnHost(net as TestNet, rc as Client, host, extra, pids),
  };
}
