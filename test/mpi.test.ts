/**
 * The `mpi` launcher on a real Open MPI (`mpiexec` from Debian's openmpi-bin, installed by
 * `.ci/run`): engines are the ranks of one mpiexec job, ids follow ranks, the job lives and dies
 * as one, and `ptcluster engines` adds a second job.
 */
import { execaSync } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "@ptcluster/client";
import { expectGone, ptcluster, startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

function mpiexecMissing(): string | undefined {
  try {
    execaSync("mpiexec", ["--version"], { stdin: "ignore" });
    return undefined;
  } catch {
    return "mpiexec not found (install Debian's openmpi-bin; .ci/run does)";
  }
}
const missing = mpiexecMissing();
if (missing) console.warn(`test/mpi.test.ts skipped: ${missing}`);

describe.skipIf(missing !== undefined)("mpi launcher", () => {
  const tmp = tempClusterDir();
  let cluster: TestCluster;
  let rc: Client;
  /** Every engine pid seen, to check none is left at the end. */
  const seen = new Set<number>();

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, {
      n: 3,
      restart: true,
      extra: ["--engines", "mpi", "--mpi-args=--oversubscribe"],
    });
    rc = await cluster.connect();
  });
  afterAll(async () => {
    await rc?.close();
    await cluster?.stop();
    await expectGone([...seen], 3_000);
    tmp.cleanup();
  });

  it("starts the engines as the ranks of one mpiexec job, ids following ranks", async () => {
    expect(cluster.ids).toEqual([0, 1, 2]);
    // One launch process: mpiexec (its ranks are its children).
    expect(cluster.enginePids).toHaveLength(1);
    const places = await rc.view().applySync(() => ({ id: engine.id, mpi: engine.mpi, pid: process.pid }));
    for (const p of places) seen.add(p.pid);
    expect(places.map((p) => [p.id, p.mpi])).toEqual([
      [0, { rank: 0, size: 3 }],
      [1, { rank: 1, size: 3 }],
      [2, { rank: 2, size: 3 }],
    ]);
    // mpiexec handed its environment, huge pages first in GLIBC_TUNABLES, to its ranks (launchers/malloc-tunables.ts).
    const tunables = await rc.view().applySync(() => process.env["GLIBC_TUNABLES"] ?? "");
    for (const t of tunables) expect(t).toMatch(/^glibc\.malloc\.hugetlb=1(:|$)/);
    const st = await rc.status();
    expect(st.engines.map((e) => e.mpi?.rank).sort()).toEqual([0, 1, 2]);
    const text = await ptcluster(tmp.dir, ["status"]);
    expect(text.stdout).toMatch(/MPI RANK/);
    expect(text.stdout).toMatch(/\b1\/3\b/);
  });

  it("runs a load-balanced map over the ranks", async () => {
    const out = await rc.loadBalancedView().map(
      (x: number) => x * 2,
      Array.from({ length: 100 }, (_, i) => i),
    );
    expect(out).toEqual(Array.from({ length: 100 }, (_, i) => i * 2));
  });

  it("a rank that dies takes its job down; the job is replaced as a whole with ids following the new ranks", async () => {
    const before = await rc.status();
    const victim = before.engines.find((e) => e.id === 1);
    expect(victim).toBeDefined();
    const downs: number[] = [];
    rc.on("engine_down", (e: { id: number }) => downs.push(e.id));
    process.kill(victim!.pid, "SIGKILL");
    // MPI aborts the job: all three engines are gone, then a new job of three registers.
    await waitFor(() => downs.length >= 3, { timeout: 10_000, what: "the job's three engines to go" });
    await waitFor(() => rc.ids.length === 3 && rc.ids.every((id) => id >= 3), {
      timeout: 20_000,
      what: "a replacement job of three engines",
    });
    const places = await rc.view().applySync(() => ({ id: engine.id, rank: engine.mpi?.rank, pid: process.pid }));
    for (const p of places) seen.add(p.pid);
    const base = Math.min(...places.map((p) => p.id));
    expect(places.map((p) => p.id - base)).toEqual(places.map((p) => p.rank));
    expect(downs.sort()).toEqual([0, 1, 2]);
  });

  it("an mpiexec that fails is reported with its output, at once", async () => {
    const t0 = Date.now();
    const r = await ptcluster(tmp.dir, [
      "engines",
      "-n",
      "1",
      "--engines",
      "mpi",
      "--mpi-args=--no-such-mpiexec-option",
    ]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(
      /The engines started by mpiexec -n 1 \(pid \d+\) exited \(code \d+\) before registering:\n[^]*no-such-mpiexec-option/,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it("`ptcluster engines -n 2` adds a second mpiexec job", async () => {
    const r = await ptcluster(tmp.dir, ["engines", "-n", "2", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    const { ids } = JSON.parse(r.stdout) as { ids: number[] };
    expect(ids).toHaveLength(2);
    await waitFor(() => ids.every((id) => rc.ids.includes(id)), { what: "the added engines in rc.ids" });
    const places = await rc.view(ids).applySync(() => ({ id: engine.id, mpi: engine.mpi, pid: process.pid }));
    for (const p of places) seen.add(p.pid);
    expect(places.map((p) => p.mpi)).toEqual([
      { rank: 0, size: 2 },
      { rank: 1, size: 2 },
    ]);
    expect(places[1]!.id - places[0]!.id).toBe(1);
  });
});
