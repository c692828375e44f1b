import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { createHash } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DependencyError, RemoteError, TaskCancelledError, moduleFunction } from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const moduleUrl = new URL("./fixtures/tasks-module.ts", import.meta.url);

describe("load-balanced extras: module tasks, dependencies, progress bar", () => {
  const ctx = useCluster({ n: 2 });

  it("a module task runs an exported function of a TypeScript module the engines import", async () => {
    const lb = ctx.rc.loadBalancedView();
    const digest = moduleFunction<(s: string) => string>(moduleUrl, "digest");
    const triple = moduleFunction<(x: number) => number>(fileURLToPath(moduleUrl));
    const expected = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);
    expect(await lb.apply(digest, "abc")).toBe(expected("abc"));
    expect(await lb.map(digest, ["a", "b", "c", "d"])).toEqual(["a", "b", "c", "d"].map(expected));
    expect(await lb.map(triple, [1, 2, 3])).toEqual([3, 6, 9]);
    // The same function runs in the client too (serial debugging).
    expect(await triple(5)).toBe(15);
    // A missing export fails on the engine with a clear error.
    const missing = moduleFunction<() => void>(moduleUrl, "nope");
    const err = await lb.apply(missing).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).message).toMatch(/no exported function `nope`/);
  });

  it("`after` waits for its dependencies; `follow` runs where they ran; a failed dependency fails its dependents", async () => {
    const lb = ctx.rc.loadBalancedView();
    // The dependency holds until the test opens a gate; the dependent must not start before that.
    const gate = join(ctx.dir, "after-gate");
    const slow = lb.apply(async (g: string) => {
      const fs = require("node:fs") as typeof import("node:fs");
      fs.writeFileSync(`${g}.started`, "");
      while (!fs.existsSync(g)) await new Promise((r) => setImmediate(r));
      return Date.now();
    }, gate);
    const waiter = lb.with({ after: [slow] }).apply(() => Date.now());
    await waitFor(() => existsSync(`${gate}.started`), { what: "the dependency to start" });
    await ctx.rc.queueStatus(); // a round trip: anything that could have started, has
    expect(waiter.ready()).toBe(false);
    writeFileSync(gate, "");
    expect(await waiter).toBeGreaterThanOrEqual(await slow);

    for (let k = 0; k < 4; k++) {
      const first = lb.apply(() => engine.id);
      const second = lb.with({ follow: [first] }).apply(() => engine.id);
      expect(await second).toBe(await first);
    }
    const pinned = lb.apply(() => engine.id);
    expect(await lb.map((_item: number) => engine.id, [1, 2, 3, 4, 5, 6], { follow: [pinned], chunkSize: 1 })).toEqual(
      Array(6).fill(await pinned),
    );

    const failing = lb.apply(() => {
      throw new Error("upstream broke");
    });
    const dependent = await lb
      .with({ after: [failing] })
      .apply(() => "ran")
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(dependent).toBeInstanceOf(DependencyError);
    expect((dependent as DependencyError).code).toBe("ERR_PTC_DEPENDENCY");
    expect((dependent as DependencyError).message).toMatch(/upstream broke/);
    expect((dependent as DependencyError).cause).toBeInstanceOf(RemoteError);

    const a = ctx.rc.engine(ctx.rc.ids[0]!).apply(() => 1);
    const b = ctx.rc.engine(ctx.rc.ids[1]!).apply(() => 2);
    await Promise.all([a, b]);
    const impossible = await lb
      .with({ follow: [a, b] })
      .apply(() => 3)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(impossible).toBeInstanceOf(DependencyError);
    expect((impossible as Error).message).toMatch(/different engines/);
  });

  it("ctx.rc.abort takes task ids (ar.taskIds) as well as results", async () => {
    const lb = ctx.rc.loadBalancedView();
    const waitForAbort = () =>
      new Promise<string>((resolve) => engine.signal?.addEventListener("abort", () => resolve("saw abort")));
    const running = lb.apply(waitForAbort);
    const queuedBehind = ctx.rc.loadBalancedView([ctx.rc.ids[0]!]).apply(waitForAbort);
    expect(running.taskIds).toHaveLength(1);
    ctx.rc.abort([...running.taskIds, ...queuedBehind.taskIds]);
    for (const ar of [running, queuedBehind]) {
      const err = await ar.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TaskCancelledError);
      expect((err as TaskCancelledError).code).toBe("ERR_PTC_TASK_CANCELLED");
    }
  });

  it("`progress: true` draws a bar with rate and ETA when stderr is a terminal, and nothing when it is not", async () => {
    const cmd = `${process.execPath} --import tsx test/fixtures/progress-map.ts`;
    const tty = await execa("script", ["-qec", cmd, "/dev/null"], {
      cwd: root,
      env: { PTCLUSTER_DIR: ctx.dir },
      reject: false,
      timeout: 60_000,
    });
    expect(tty.exitCode).toBe(0);
    expect(tty.stdout).toMatch(/DONE 1560/);
    expect(tty.stdout).toMatch(/█+░*\s+\d+% \| \d+\/40 items \| [\d,]+ items\/s \| ETA/);
    expect(tty.stdout).toMatch(/100% \| 40\/40 items/);
    const piped = await execa(process.execPath, ["--import", "tsx", "test/fixtures/progress-map.ts"], {
      cwd: root,
      env: { PTCLUSTER_DIR: ctx.dir },
      reject: false,
      timeout: 60_000,
    });
    expect(piped.exitCode).toBe(0);
    expect(piped.stdout).toMatch(/DONE 1560/);
    expect(piped.stderr).toBe("");
  });
});
