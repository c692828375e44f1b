/**
 * Growing a running cluster: `ptcluster engines -n K` and `rc.addEngines()`, with the cluster's
 * own launcher or another one; and how launches that fail are reported. The ssh launcher runs here
 * through a stand-in ssh (test/fixtures/fake-ssh.sh) that runs the remote command locally; the
 * real OpenSSH path is tested across network namespaces in remote.test.ts.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterStartError, InvalidOptionError, connect, type Client } from "@ptcluster/client";
import { BIN, expectGone, ptcluster, startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";
import { execa } from "execa";

const FAKE_SSH = fileURLToPath(new URL("./fixtures/fake-ssh.sh", import.meta.url));

/** The IPv4 addresses process `pid` listens on (TCP), from /proc: its socket inodes against the kernel's table. */
function listeningAddresses(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  const out: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/net/tcp`, "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // local_address is hex `AABBCCDD:PORT` with the address bytes reversed; state 0A is LISTEN.
    if (f[3] !== "0A" || !inodes.has(f[9] ?? "")) continue;
    const hex = (f[1] ?? "").split(":")[0] ?? "";
    out.push([3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join("."));
  }
  return out;
}

describe("adding engines to a running cluster", () => {
  const tmp = tempClusterDir();
  let cluster: TestCluster;
  let rc: Client;
  const pids = new Set<number>();

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 1 });
    rc = await cluster.connect();
  });
  afterAll(async () => {
    await rc?.close();
    await cluster?.stop();
    await expectGone([...pids], 3_000);
    tmp.cleanup();
  });

  it("`ptcluster engines -n 2` starts two more local engines, supervised and stopped with the cluster", async () => {
    const r = await ptcluster(tmp.dir, ["engines", "-n", "2"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("Added 2 engines: [1, 2].");
    await waitFor(() => rc.ids.length === 3, { what: "three engines" });
    expect(rc.ids).toEqual([0, 1, 2]);
    for (const e of (await rc.status()).engines) pids.add(e.pid);
  });

  it("rc.addEngines resolves with the new ids once they registered", async () => {
    const { ids } = await rc.addEngines(1);
    expect(ids).toEqual([3]);
    expect(await rc.engine(3).applySync(() => engine.id)).toBe(3);
    for (const e of (await rc.status()).engines) pids.add(e.pid);
  });

  it("another launcher: engines over ssh (a stand-in ssh that runs the command here), the file on standard input", async () => {
    const { ids } = await rc.addEngines(2, { launcher: "ssh", hosts: "localhost:2", sshCommand: FAKE_SSH });
    expect(ids).toEqual([4, 5]);
    const args = await rc
      .view(ids)
      .applySync(() =>
        (require("node:fs") as typeof import("node:fs")).readFileSync("/proc/self/cmdline", "utf8").split("\0"),
      );
    for (const a of args) {
      expect(a[a.indexOf("--file") + 1]).toBe("-");
      expect(a).toContain("--exit-on-stdin-close");
    }
    // The remote shell put huge pages first in GLIBC_TUNABLES (launchers/malloc-tunables.ts).
    const tunables = await rc.view(ids).applySync(() => process.env["GLIBC_TUNABLES"] ?? "");
    for (const t of tunables) expect(t).toMatch(/^glibc\.malloc\.hugetlb=1(:|$)/);
    for (const e of (await rc.status()).engines) pids.add(e.pid);
  });

  it("an ssh launch that fails is reported with ssh's output, at once", async () => {
    const t0 = Date.now();
    const err = await rc
      .addEngines(1, { launcher: "ssh", hosts: "fail@localhost", sshCommand: FAKE_SSH })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterStartError);
    expect((err as Error).message).toMatch(
      /ssh fail@localhost.*exited \(code 255\) before registering:\nfail@localhost: Permission denied \(publickey\)\./s,
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it("bad requests are refused with named errors, and the cluster is unharmed", async () => {
    await expect(rc.addEngines(0)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(rc.addEngines(1, { launcher: "teleport" })).rejects.toThrow(
      /Expected `--engines` to be one of local, ssh, mpi/,
    );
    await expect(rc.addEngines(1, { launcher: "ssh" })).rejects.toThrow(/needs `--hosts`/);
    const r = await ptcluster(tmp.dir, ["engines", "-n", "1", "--engines", "ssh", "--hosts", "b:x"]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/host\[:count\]/);
    expect(await rc.view().applySync(() => 1)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it("`ptcluster engines --peer-ip` binds the added engines' engine.comm endpoints there, and peers reach them directly", async () => {
    const r = await ptcluster(tmp.dir, ["engines", "-n", "1", "--peer-ip", "127.0.0.2"]);
    expect(r.stdout).toBe("Added 1 engine: [6].");
    const added = (await rc.status()).engines.find((e) => e.id === 6);
    pids.add(added?.pid as number);
    expect(listeningAddresses(added?.pid as number)).toContain("127.0.0.2");
    const sent = await rc.view([0, 6]).applySync(async () => {
      const { comm } = engine;
      return comm.rank === 0 ? (await comm.send(1, "hello"), "sent") : await comm.recv({ source: 0 });
    });
    expect(sent).toEqual(["sent", "hello"]);
    await waitFor(async () => ((await rc.status()).engines.find((e) => e.id === 0)?.link?.comm?.direct ?? 0) > 0, {
      what: "engine 0 to count a direct message",
    });
  });

  it("a controller without launchers (`ptcluster hub`) says how to add engines instead", async () => {
    const hub = execa(process.execPath, [BIN, "hub", "--profile", "bare"], {
      env: { PTCLUSTER_DIR: tmp.dir },
      reject: false,
      stdin: "ignore",
    });
    try {
      await waitFor(
        async () =>
          await connect({ profile: "bare", timeout: 1_000 }).then(
            (c) => c.close().then(() => true),
            () => false,
          ),
        { timeout: 10_000, what: "the bare controller" },
      );
      const bare = await connect({ profile: "bare" });
      try {
        await expect(bare.addEngines(1)).rejects.toThrow(/without launchers.*ptcluster engine --file/);
      } finally {
        await bare.close();
      }
    } finally {
      hub.kill("SIGTERM");
      await hub;
    }
  });
});
