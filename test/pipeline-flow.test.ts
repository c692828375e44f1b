import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { ClientClosedError, TaskCancelledError } from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { countingGenerator, failure, scratchDir } from "./helpers/lb.js";
import { waitFor } from "./helpers/wait.js";

const root = fileURLToPath(new URL("..", import.meta.url));

// Found on the engines through `scope`; declared for the type checker only.
declare const wd: string;

/**
 * Runs on an engine, with `scope: { wd }`: item 0 returns at once; the others mark `busy-i`, then
 * hold their engine until the file `gate` exists (returning the item) or `engine.signal` aborts
 * (marking `cleanup-i`).
 */
const gated = async (i: number): Promise<number> => {
  const fs = require("node:fs") as typeof import("node:fs");
  if (i === 0) return i;
  fs.writeFileSync(`${wd}/busy-${i}`, String(engine.id));
  const until = Date.now() + 20_000;
  while (!fs.existsSync(`${wd}/gate`)) {
    if (engine.signal?.aborted) {
      fs.writeFileSync(`${wd}/cleanup-${i}`, String(engine.id));
      return -1;
    }
    if (Date.now() > until) throw new Error("never released");
    await new Promise((r) => setTimeout(r, 5));
  }
  return i;
};

describe("pipelines: flow control and cancellation", () => {
  const ctx = useCluster({ n: 2 });

  /** Nothing of this client's runs or waits at the controller. */
  const idle = () =>
    waitFor(async () => (await ctx.rc.status()).tasksInFlight === 0, { what: "the controller to have no task left" });

  it("a slow consumer bounds how far an endless input is read; break closes the input and cancels", async () => {
    const { gen, stats } = countingGenerator(Infinity);
    const p = ctx.rc.pipeline(gen, { maxInFlight: 16 }).map((x: number) => x + 1);
    let consumed = 0;
    for await (const v of p) {
      expect(v).toBe(consumed + 1);
      consumed++;
      expect(stats.pulled).toBeLessThanOrEqual(consumed + 16);
      if (consumed === 5) {
        // The consumer stalls: what was read finishes, and nothing more is read.
        await waitFor(() => p.stats()[0]!.done >= 5 + 16 - 1 || undefined, { what: "the window to finish" });
        await idle();
        expect(stats.pulled).toBe(5 + 16);
      }
      if (consumed === 40) break;
    }
    expect(stats.closed).toBe(true);
    expect(stats.pulled).toBeLessThanOrEqual(40 + 16);
    expect(p.running).toBe(false);
    await idle();
  });

  it("break out of the loop cancels the item still running (their engine.signal aborts)", async () => {
    const dir = scratchDir();
    const p = ctx.rc
      .pipeline([0, 1], { ordered: false })
      .map(gated, { scope: { wd: dir }, timeout: 20_000 })
      .map((x: number) => x);
    for await (const v of p) {
      expect(v).toBe(0);
      await waitFor(() => existsSync(join(dir, "busy-1")), { what: "item 1 running" });
      break;
    }
    await waitFor(() => existsSync(join(dir, "cleanup-1")), { what: "item 1 to see engine.signal abort" });
    await idle();
  });

  it("an abort signal rejects the run with TaskCancelledError and cancels what runs", async () => {
    const dir = scratchDir();
    const ac = new AbortController();
    const run = ctx.rc
      .pipeline([1, 2], { signal: ac.signal })
      .map(gated, { scope: { wd: dir }, timeout: 20_000 })
      .toArray();
    await waitFor(() => existsSync(join(dir, "busy-1")), { what: "item 1 running" });
    ac.abort(new Error("user gave up"));
    const err = (await failure(() => run)) as TaskCancelledError;
    expect(err).toBeInstanceOf(TaskCancelledError);
    expect((err.cause as Error).message).toBe("user gave up");
    await waitFor(() => existsSync(join(dir, "cleanup-1")), { what: "item 1 to see engine.signal abort" });
    await idle();
  });

  it("rc.abort() with no argument cancels the client's running pipelines too", async () => {
    const dir = scratchDir();
    const run = ctx.rc
      .pipeline([1, 2])
      .map(gated, { scope: { wd: dir }, timeout: 20_000 })
      .toArray();
    await waitFor(() => existsSync(join(dir, "busy-1")), { what: "item 1 running" });
    ctx.rc.abort();
    expect(await failure(() => run)).toBeInstanceOf(TaskCancelledError);
    await waitFor(() => existsSync(join(dir, "cleanup-1")), { what: "item 1 to see engine.signal abort" });
    await idle();
  });

  it("an item moves to the next stage as soon as it leaves the previous one, whatever the others do", async () => {
    const dir = scratchDir();
    const seen: number[] = [];
    const last = (x: number) => {
      const fs = require("node:fs") as typeof import("node:fs");
      fs.writeFileSync(`${wd}/last-${x}`, "");
      return x;
    };
    const run = (async () => {
      for await (const v of ctx.rc
        .pipeline([1, 0], { ordered: false })
        .map(gated, { scope: { wd: dir }, timeout: 20_000 })
        .map(last, { scope: { wd: dir } })) {
        seen.push(v);
        // Item 0 reached the end while item 1 still holds its engine in the first stage.
        if (v === 0) {
          expect(existsSync(join(dir, "busy-1"))).toBe(true);
          expect(existsSync(join(dir, "last-1"))).toBe(false);
          writeFileSync(join(dir, "gate"), "");
        }
      }
    })();
    await run;
    expect(seen).toEqual([0, 1]);
  });

  it("closing the client fails a running pipeline with ClientClosedError, promptly", async () => {
    const dir = scratchDir();
    const rc2 = await ctx.cluster.connect();
    const run = rc2
      .pipeline([1], {})
      .map(gated, { scope: { wd: dir }, timeout: 20_000 })
      .toArray();
    await waitFor(() => existsSync(join(dir, "busy-1")), { what: "item 1 running" });
    const t0 = Date.now();
    const settled = failure(() => run);
    await rc2.close();
    expect(await settled).toBeInstanceOf(ClientClosedError);
    expect(Date.now() - t0).toBeLessThan(2_000);
    // The controller cancels the pipeline of a client that said goodbye.
    await waitFor(() => existsSync(join(dir, "cleanup-1")), { what: "item 1 to be cancelled" });
    await idle();
  });

  it("`progress: true` draws one bar per stage when stderr is a terminal, and nothing when it is not", async () => {
    const cmd = `${process.execPath} --import tsx test/fixtures/progress-pipeline.ts`;
    const tty = await execa("script", ["-qec", cmd, "/dev/null"], {
      cwd: root,
      env: { PTCLUSTER_DIR: ctx.dir },
      reject: false,
      timeout: 30_000,
    });
    expect(tty.exitCode).toBe(0);
    expect(tty.stdout).toMatch(/DONE 760/);
    expect(tty.stdout).toMatch(/0:slow +█+ 40\/40 \| 0 in flight \| 0 failed/);
    expect(tty.stdout).toMatch(/1:anonymous +█+ 40\/40 \| 0 in flight/);
    const piped = await execa(process.execPath, ["--import", "tsx", "test/fixtures/progress-pipeline.ts"], {
      cwd: root,
      env: { PTCLUSTER_DIR: ctx.dir },
      reject: false,
      timeout: 30_000,
    });
    expect(piped.exitCode).toBe(0);
    expect(piped.stdout).toMatch(/DONE 760/);
    expect(piped.stderr).toBe("");
  });

  it("a running pipeline holds the process until its outputs arrive, then lets it exit", async () => {
    const r = await execa(process.execPath, ["--import", "tsx", "test/fixtures/idle-client.ts", "pipeline"], {
      cwd: root,
      env: { PTCLUSTER_DIR: ctx.dir },
      reject: false,
      timeout: 15_000,
    });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => "result" in l)?.["result"]).toEqual([2, 4, 6]);
  });
});
