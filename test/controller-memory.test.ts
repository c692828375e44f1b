import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ClusterStatus } from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const MiB = 1024 * 1024;

/**
 * Starts a churn client (test/fixtures/churn-client.ts): `shipped` once its functions ran, `go()`
 * lets it start its gated tasks, `ready` once the controller has them. (The process is wrapped:
 * an async function returning execa's promise would wait for its exit.)
 */
function churnClient(dir: string, fns: number, gate: string) {
  const child = execa(process.execPath, ["--import", "tsx", "test/fixtures/churn-client.ts"], {
    cwd: root,
    env: { PTCLUSTER_DIR: dir, FNS: String(fns), GATE: gate },
    reject: false,
    buffer: false,
  });
  let text = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const printed = (line: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!text.includes(`${line}\n`)) return;
        child.stdout?.off("data", check);
        resolve();
      };
      child.stdout?.on("data", check);
      check();
      child.once("exit", () => reject(new Error(`the churn client exited before "${line}": ${err}`)));
    });
  const shipped = printed("shipped");
  return { child, shipped, go: () => child.stdin?.write("go\n"), ready: printed("ready") };
}

/** Starts churn clients, lets them all ship their functions, then has each start its gated tasks. */
async function churnClients(dir: string, fns: number, gate: string, n: number) {
  const clients = Array.from({ length: n }, () => churnClient(dir, fns, gate));
  await Promise.all(clients.map((c) => c.shipped));
  for (const c of clients) c.go();
  await Promise.all(clients.map((c) => c.ready));
  return clients;
}

const live = (s: ClusterStatus) => s.memory.heapUsed + s.memory.external;

// Clients that vanish (SIGKILL, no goodbye) with functions shipped, tasks queued and results on
// the way: once the client timeout and the result TTL have passed, the controller holds nothing
// of theirs, and its live memory is back where it started.
describe("controller memory after clients vanish", () => {
  const ctx = useCluster({ n: 2, extra: ["--client-timeout", "1000", "--result-ttl", "1500"] });

  /** Waits until the controller keeps nothing for anyone but this test's client. */
  const settled = () =>
    waitFor(
      async () => {
        const s = await ctx.rc.status();
        const r = s.retained;
        return s.clients === 1 && r.tasks === 0 && r.results === 0 && r.functions === 0 && r.clientLinks === 1
          ? s
          : undefined;
      },
      { what: "the controller to let go of the vanished clients", timeout: 20_000, interval: 100 },
    );

  it("drops their tasks, results, function sources and links, and returns to its baseline heap", async () => {
    // One round first, so what is allocated once (compiled code, buffer pools, maps' capacity) is in the baseline.
    const gate = join(ctx.dir, "gate");
    const warm = await churnClients(ctx.dir, 200, gate, 1);
    for (const c of warm) c.child.kill("SIGKILL");
    await Promise.all(warm.map((c) => c.child));
    writeFileSync(gate, "");
    await settled();
    const baseline = live(await ctx.rc.status({ gc: true }));

    rmSync(gate);
    const clients = await churnClients(ctx.dir, 300, gate, 3);
    const during = await ctx.rc.status({ gc: true });
    expect(during.clients).toBe(4);
    expect(during.retained.functions).toBe(3 * 300 + 2); // their own, and two they share (the same sources)
    // Their 18 gated tasks are all there: two hold the engines, the others wait.
    expect(during.retained.tasks).toBe(18);
    for (const c of clients) c.child.kill("SIGKILL");
    await Promise.all(clients.map((c) => c.child));
    writeFileSync(gate, "");

    // The results of the tasks that were running finish after their clients died: they are kept
    // (with the failures of the queued ones, cancelled).
    const kept = await waitFor(
      async () => {
        const s = await ctx.rc.status();
        return s.retained.results > 0 && s.retained.tasks === 0 && s.clients === 1 ? s : undefined;
      },
      { what: "the running tasks' results to be kept and the queued ones cancelled", timeout: 15_000, interval: 50 },
    );
    expect(kept.retained.resultBytes).toBeGreaterThanOrEqual(2 * 2 * MiB);
    expect(kept.retained.functions).toBe(0);
    // What the controller held while they were there is measurable: the check below can fail.
    expect(live(during) - baseline).toBeGreaterThan(MiB);

    const after = await settled();
    expect(after.retained.engineLinks).toBe(2);
    const end = live(await ctx.rc.status({ gc: true }));
    // Back to the baseline, within what a few compiled functions and log buffers take.
    expect(end - baseline).toBeLessThan(MiB);
    // Engines were told to forget the sources: a function the vanished clients shipped, shipped
    // again by another client, reaches every engine with its source and runs.
    expect(await ctx.rc.view().apply((0, eval)("(x) => x + 1000") as (x: number) => number, 2)).toEqual([1002, 1002]);
    expect(await ctx.rc.loadBalancedView().apply((x: number) => x * 3, 5)).toBe(15);
  });
});
