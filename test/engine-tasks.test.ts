import { afterAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EngineLostError, TaskCancelledError, TaskTimeoutError } from "@ptcluster/client";
import { tempClusterDir, useCluster } from "./helpers/cluster.js";
import { settled } from "./helpers/lb.js";
import { waitFor } from "./helpers/wait.js";

// Two clusters (profiles) in one PTCLUSTER_DIR.
const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

describe("an engine's task flow with two slots (--concurrency 2)", () => {
  const ctx = useCluster({ n: 1, extra: ["--concurrency", "2"], dir: tmp.dir, profile: "two-slots" });

  it("a task that never yields keeps its slot-mate from starting: only it shows as running, and the other runs on the fresh executor", async () => {
    const id = ctx.rc.ids[0]!;
    const lb = ctx.rc.loadBalancedView([id]);
    const spin = lb.with({ timeout: 1_500 }).apply(function neverYields() {
      const end = Date.now() + 30_000;
      while (Date.now() < end) {
        /* holds the executor's thread: nothing else on it can start */
      }
      return "spun";
    });
    const blocked = lb.apply(function blockedBehind() {
      return 2;
    });
    // The executor reports each start before the task's code runs: the second task was handed
    // over with a free slot, but never started, and the engine must not claim it did.
    const seen = await waitFor(
      async () => {
        const e = (await ctx.rc.status()).engines.find((x) => x.id === id);
        return e && e.current.length > 0 ? e : undefined;
      },
      { what: "the spinning task shown running" },
    );
    expect(seen.current.map((c) => c.fn)).toEqual(["neverYields"]);
    expect(seen.queued).toBe(1);
    await expect(spin).rejects.toBeInstanceOf(TaskTimeoutError);
    // Not started, so not lost with the executor: it runs on the new one.
    expect(await blocked).toBe(2);
  });
});

describe("an engine's task flow with one slot", () => {
  const ctx = useCluster({ n: 1, dir: tmp.dir, profile: "one-slot" });

  /**
   * Writes `<marker>.started`, spins for 5 ms and then until `gate` exists (20 s at most), writes
   * `<marker>.ended`. (Never quick: an engine may let a function that has always been quick hold
   * back the results before it, docs/architecture.md.)
   */
  const holdsTheThread = (marker: string, gate: string): string => {
    const fs = require("node:fs") as typeof import("node:fs");
    fs.writeFileSync(`${marker}.started`, "");
    const [least, until] = [Date.now() + 5, Date.now() + 20_000];
    while ((Date.now() < least || !fs.existsSync(gate)) && Date.now() < until);
    fs.writeFileSync(`${marker}.ended`, "");
    return "spun";
  };

  // Direct tasks on the executor's own client links (the default), and through the engine's
  // supervisor (PTCLUSTER_DIRECT=lean), whose results go in the executor's batched reports.
  for (const path of ["executor links", "supervisor"] as const)
    it(`direct, ${path}: a result comes while the task queued after it holds the executor's thread`, async () => {
      if (path === "supervisor") process.env["PTCLUSTER_DIRECT"] = "lean";
      const rc = await ctx.cluster.connect();
      delete process.env["PTCLUSTER_DIRECT"];
      try {
        const view = rc.engine(rc.ids[0]!);
        // Quick tasks first: the supervisor then posts the next task while one runs (ahead).
        for (let i = 0; i < 50; i++) await view.apply(() => 0);
        const dir = mkdtempSync(join(ctx.dir, "held-"));
        const [marker, gate] = [join(dir, "spin"), join(dir, "gate")];
        const quick = view.apply(() => 1);
        const held = view.apply(holdsTheThread, marker, gate);
        try {
          expect(await quick).toBe(1);
          // Before the fix, the result waited in the executor's batch for the next task to end.
          expect(existsSync(`${marker}.ended`)).toBe(false);
        } finally {
          writeFileSync(gate, "");
        }
        expect(await held).toBe("spun");
        expect(rc.connectionStats().direct?.tasks).toBeGreaterThan(0);
      } finally {
        await rc.close();
      }
    });

  it("a task posted ahead that finished before the next one held the thread and timed out: not run again, its lost result an EngineLostError", async () => {
    const { rc } = ctx;
    const lb = rc.loadBalancedView();
    // Quick so far (the engine posts the next task ahead, and keeps one report per turn), until
    // it holds the thread: the result before it is still in the executor's batch.
    const f = (what: string, file: string) => {
      if (what === "spin") for (const until = Date.now() + 20_000; Date.now() < until;);
      else if (file) require("node:fs").appendFileSync(file, "x");
      return what;
    };
    for (let i = 0; i < 50; i++) await lb.apply(f, "warm", "");
    const runs = join(mkdtempSync(join(ctx.dir, "ran-")), "runs");
    const first = lb.apply(f, "first", runs);
    const spin = lb.with({ timeout: 300 }).apply(f, "spin", "");
    await expect(spin).rejects.toBeInstanceOf(TaskTimeoutError);
    // Posted ahead (most runs; the controller's and the engine's timing decide), its result was
    // in the executor's batch when the executor was replaced: lost, and said so. Otherwise it
    // came back before. Either way it ran once.
    const outcome = await settled(first);
    if (outcome !== "first") {
      expect(outcome).toBeInstanceOf(EngineLostError);
      expect((outcome as Error).message).toMatch(/result is lost\. The task is not run again/);
    }
    expect(await lb.apply(f, "after", "")).toBe("after");
    expect(readFileSync(runs, "utf8")).toBe("x"); // once: before, it ran again on the new executor
  });

  it("a task posted ahead that finished, cancelled while the next one holds the thread: its verdict does not say it never started", async () => {
    const { rc } = ctx;
    const lb = rc.loadBalancedView();
    const dir = mkdtempSync(join(ctx.dir, "cancel-ran-"));
    const [runs, gate] = [join(dir, "runs"), join(dir, "gate")];
    // Quick so far, until it holds the thread (until `gate` exists, 20 s at most).
    const g = (what: string, file: string) => {
      const fs = require("node:fs") as typeof import("node:fs");
      if (what === "hold") for (const until = Date.now() + 20_000; !fs.existsSync(file) && Date.now() < until;);
      else if (file) fs.appendFileSync(file, "x");
      return what;
    };
    for (let i = 0; i < 50; i++) await lb.apply(g, "warm", "");
    const first = lb.apply(g, "first", runs);
    const held = lb.apply(g, "hold", gate);
    await waitFor(() => existsSync(runs), { what: "the first task to run" });
    first.abort();
    // The grace period (1 s) passes with the thread held; then it is freed.
    const abortedAt = Date.now();
    await waitFor(
      async () => {
        const e = (await rc.status()).engines[0];
        return (e?.current.length ?? 0) > 0 && Date.now() - abortedAt > 1_500;
      },
      { what: "the grace period to pass, the thread held" },
    );
    writeFileSync(gate, "");
    expect(await held).toBe("hold");
    const outcome = await settled(first);
    // It ran: its result (it came back before the cancel), or a cancellation while running.
    if (outcome !== "first") {
      expect(outcome).toBeInstanceOf(TaskCancelledError);
      expect((outcome as Error).message).not.toMatch(/before it started/);
    }
    expect(readFileSync(runs, "utf8")).toBe("x");
  });
});
