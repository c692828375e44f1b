import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CompositeError, TaskCancelledError, TaskTimeoutError } from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { failure, gatedTask, scratchDir } from "./helpers/lb.js";
import { waitFor } from "./helpers/wait.js";

// `timeout` and `signal` on DirectView and EngineView (issue 12, "Everywhere"), and `ar.abort()`
// of a task queued behind a running one. Engines have concurrency 1 and a grace period of 1 s.

/** Runs on an engine: writes `marker`, then spins without yielding until the file `gate` exists (20 s at most). */
const spin = (marker: string, gate: string): string => {
  const fs = require("node:fs") as typeof import("node:fs");
  fs.writeFileSync(`${marker}-${engine.id}`, "");
  const until = Date.now() + 20_000;
  while (!fs.existsSync(gate) && Date.now() < until);
  return "spun";
};

describe("DirectView timeout and signal", () => {
  const ctx = useCluster({ n: 2 });
  const started = (marker: string, id: number) => existsSync(`${marker}-${id}`);

  it("timeout: a spinning task fails with TaskTimeoutError on each engine; the engines serve the next call with their namespaces reset", async () => {
    const { rc } = ctx;
    const work = scratchDir(ctx.dir);
    await rc.view().push({ kept: 1 });
    const resets: number[] = [];
    rc.on("engine_reset", (e) => resets.push(e.id));
    const t0 = Date.now();
    const err = await failure(() => rc.view().with({ timeout: 200 }).apply(spin, join(work, "a"), join(work, "never")));
    // 200 ms, then the grace period of 1 s: the tasks never yield, so their executors are replaced.
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(err).toBeInstanceOf(CompositeError);
    const errors = (err as CompositeError).errors;
    expect(errors).toHaveLength(2);
    errors.forEach((e, i) => {
      expect(e).toBeInstanceOf(TaskTimeoutError);
      expect((e as TaskTimeoutError).engineId).toBe(ctx.cluster.ids[i]);
      expect((e as TaskTimeoutError).timeoutMs).toBe(200);
    });
    expect(await rc.view().apply(() => engine.id)).toEqual(ctx.cluster.ids);
    await waitFor(() => resets.length >= 2, { what: "engine_reset notifications" });
    expect([...resets].sort()).toEqual(ctx.cluster.ids);
    expect(await rc.view().apply(() => typeof (globalThis as { kept?: number }).kept)).toEqual([
      "undefined",
      "undefined",
    ]);

    // One engine: the error itself; a quick task under a timeout is not touched.
    const one = await failure(() =>
      rc.engine(1).with({ timeout: 150 }).apply(spin, join(work, "b"), join(work, "never")),
    );
    expect(one).toBeInstanceOf(TaskTimeoutError);
    expect(
      await rc
        .engine(1)
        .with({ timeout: 5_000 })
        .apply((x: number) => x + 1, 41),
    ).toBe(42);
  });

  it("map: timeout per item, as trailing options or through with()", async () => {
    const { rc } = ctx;
    const work = scratchDir(ctx.dir);
    const gate = join(work, "never");
    const item = (x: number, marker: string, g: string): number => {
      if (x !== 3) return x * 2;
      const fs = require("node:fs") as typeof import("node:fs");
      fs.writeFileSync(marker, "");
      const until = Date.now() + 20_000;
      while (!fs.existsSync(g) && Date.now() < until);
      return -1;
    };
    const m = join(work, "m");
    const err = await failure(() =>
      rc.view().map(item, [0, 1, 2, 3], [m, m, m, m], [gate, gate, gate, gate], { timeout: 200 }),
    );
    // One error per engine, as for apply: engine 1's block (items 2 and 3) timed out.
    expect(err).toBeInstanceOf(CompositeError);
    const errors = (err as CompositeError).errors;
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TaskTimeoutError);
    expect((errors[0] as TaskTimeoutError).engineId).toBe(1);
    expect((errors[0] as TaskTimeoutError).timeoutMs).toBe(400);
    // Two items per engine, 200 ms each: the block on engine 0 finished.
    expect(
      await rc
        .view()
        .with({ timeout: 200 })
        .map((x: number) => x * 2, [1, 2, 3, 4]),
    ).toEqual([2, 4, 6, 8]);
    expect(await rc.engine(0).map((x: number) => x + 1, [1, 2], { timeout: 1_000 })).toEqual([2, 3]);
  });

  it("signal: aborting it cancels the running tasks (they see engine.signal) with TaskCancelledError", async () => {
    const { rc } = ctx;
    const work = scratchDir(ctx.dir);
    const ac = new AbortController();
    const tag = join(work, "g");
    const ar = rc.engine(0).with({ signal: ac.signal }).apply(gatedTask, join(work, "never"), tag);
    await waitFor(() => existsSync(`${tag}.started`), { what: "the task to start" });
    ac.abort();
    expect(await failure(() => ar)).toBeInstanceOf(TaskCancelledError);
    // The task saw its signal and returned (so no executor was replaced).
    expect(existsSync(`${tag}.cancelled`)).toBe(true);

    // A spinning task on both engines: stopped by force after the grace period.
    const ac2 = new AbortController();
    const sp = rc.view().with({ signal: ac2.signal }).apply(spin, join(work, "s"), join(work, "never"));
    await waitFor(() => started(join(work, "s"), 0) && started(join(work, "s"), 1), { what: "both spins to start" });
    ac2.abort();
    const err = await failure(() => sp);
    expect(err).toBeInstanceOf(CompositeError);
    for (const e of (err as CompositeError).errors) expect(e).toBeInstanceOf(TaskCancelledError);
    // Each names its engine, as the composite's lines do.
    expect((err as CompositeError).errors.map((e) => (e as TaskCancelledError).engineId).sort()).toEqual([0, 1]);
    expect((err as CompositeError).message).toMatch(/\[0\] .*\n.*\[1\] /s);
    expect(await rc.view().apply(() => "next")).toEqual(["next", "next"]);
  });

  it("signal: one aborted already sends nothing", async () => {
    const { rc } = ctx;
    const work = scratchDir(ctx.dir);
    const marker = join(work, "ran");
    const ar = rc
      .view()
      .with({ signal: AbortSignal.abort() })
      .apply((m: string) => require("node:fs").writeFileSync(m, ""), marker);
    expect(await failure(() => ar)).toBeInstanceOf(TaskCancelledError);
    // Tasks run in order on each engine: after this call, the cancelled one would have run.
    await rc.view().apply(() => 0);
    expect(existsSync(marker)).toBe(false);
    expect(() => rc.view().with({ signal: "stop" as unknown as AbortSignal })).toThrow(
      /Expected `signal` to be an AbortSignal, got/,
    );
    expect(() => rc.engine(0).with({ timeout: -1 })).toThrow(
      /Expected `timeout` to be a non-negative integer, got `-1`/,
    );
  });

  it("ar.abort() of a task queued behind a running one: it never runs, and the running one is untouched", async () => {
    const { rc } = ctx;
    const work = scratchDir(ctx.dir);
    const e0 = rc.engine(0);
    // Quick tasks first: the engine then posts tasks ahead to its executor (prefetch), so the
    // queued one waits in the executor behind the spinning one.
    for (let i = 0; i < 30; i++) await e0.apply(() => 0);
    // The running task spins for 700 ms and ends on its own, within the grace period (1 s) of
    // the cancel, which reaches its engine long before (a few ms: the round trip below).
    const running = e0.apply(
      (marker: string) => {
        require("node:fs").writeFileSync(marker, "");
        const until = Date.now() + 700;
        while (Date.now() < until);
        return "spun";
      },
      join(work, "r-0"),
    );
    await waitFor(() => existsSync(join(work, "r-0")), { what: "the spin to start" });
    const marker = join(work, "queued-ran");
    const queued = e0.apply((m: string) => require("node:fs").writeFileSync(m, ""), marker);
    await waitFor(async () => (await rc.queueStatus()).engines[0]?.queued === 1, {
      what: "the task queued on engine 0",
    });
    queued.abort();
    await rc.queueStatus(); // the controller has sent the cancel on
    expect(await running).toBe("spun");
    expect(await failure(() => queued)).toBeInstanceOf(TaskCancelledError);
    await e0.apply(() => 0);
    expect(existsSync(marker)).toBe(false);
  });

  it("ar.abort() of a queued task while the running one holds the executor past the grace period: reported then, it never runs, and the running one is not replaced", async () => {
    const { rc } = ctx;
    const work = scratchDir(ctx.dir);
    const e1 = rc.engine(1);
    const resets: number[] = [];
    const onReset = (e: { id: number }) => resets.push(e.id);
    rc.on("engine_reset", onReset);
    try {
      for (let i = 0; i < 30; i++) await e1.apply(() => 0);
      await e1.push({ kept: 7 });
      const gate = join(work, "gate");
      const running = e1.apply(spin, join(work, "r"), gate);
      await waitFor(() => started(join(work, "r"), 1), { what: "the spin to start" });
      const marker = join(work, "queued-ran");
      const queued = e1.apply((m: string) => require("node:fs").writeFileSync(m, ""), marker);
      await waitFor(async () => (await rc.queueStatus()).engines[1]?.queued === 1, {
        what: "the task queued on engine 1",
      });
      queued.abort();
      // Reported once the grace period (1 s) is over, while the spin still holds the executor:
      // its journal shows the queued task never started, and the executor reads the cancel before
      // it starts anything.
      expect(await failure(() => queued)).toBeInstanceOf(TaskCancelledError);
      const spinning = (await rc.status()).engines.find((x) => x.id === 1)?.current ?? [];
      expect(spinning.map((t) => t.fn)).toEqual(["spin"]);
      expect(existsSync(gate)).toBe(false);
      require("node:fs").writeFileSync(gate, "");
      expect(await running).toBe("spun");
      expect(await e1.pull("kept")).toBe(7);
      expect(existsSync(marker)).toBe(false);
      expect(resets).toEqual([]);
    } finally {
      rc.off("engine_reset", onReset);
    }
  });
});
