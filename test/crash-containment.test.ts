import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EngineLostError, ResourceLimitError, TaskCrashedError, type Client } from "@ptcluster/client";
import { defaultMaxMemoryMb } from "@ptcluster/engine";
import { pidAlive } from "@ptcluster/protocol";
import { tempClusterDir, useCluster } from "./helpers/cluster.js";
import { failure, lines, scratchDir } from "./helpers/lb.js";
import { waitFor } from "./helpers/wait.js";

/** Appends this engine's id to `file`, then ends its executor. */
const exitTask = (file: string): string => {
  require("node:fs").appendFileSync(file, `${engine.id}\n`);
  process.exit(1);
};

/** The engine ids the tasks wrote to `file`, in order. */
const runsIn = (file: string): number[] => lines(file).map(Number);

// Two clusters (two profiles) in one PTCLUSTER_DIR.
const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

function resetsOf(rc: Client): number[] {
  const out: number[] = [];
  rc.on("engine_reset", (r) => out.push(r.id));
  return out;
}

// A task that ends its own executor fails alone: one attempt, a named error, the other engines'
// namespaces untouched; only its `retries` run it again (elsewhere).
describe("crashes stay in their task", () => {
  const ctx = useCluster({ n: 3, dir: tmp.dir, profile: "crash" });

  it("ptcluster start bounds each local engine's memory by default (its share of the machine)", () => {
    for (const pid of ctx.cluster.enginePids) {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const at = args.indexOf("--max-memory");
      expect(at).toBeGreaterThan(0);
      expect(Number(args[at + 1])).toBe(defaultMaxMemoryMb(3));
    }
  });

  it("process.exit in a load-balanced task: TaskCrashedError after one attempt; the other engines keep their namespaces, the crashed one serves with a fresh one", async () => {
    const { rc } = ctx;
    const ids = rc.ids;
    expect(ids).toHaveLength(3);
    await rc.view().push({ kept: "value" });
    const resets = resetsOf(rc);
    const log = join(scratchDir(ctx.dir, "exit-"), "runs.log");
    const ar = rc.loadBalancedView().apply(exitTask, log);
    const err = await failure(() => ar);
    expect(err).toBeInstanceOf(TaskCrashedError);
    const e = err as TaskCrashedError;
    expect(e.code).toBe("ERR_PTC_TASK_CRASHED");
    expect(e.message).toMatch(/process\.exit\(1\)/);
    const runs = runsIn(log);
    expect(runs).toHaveLength(1);
    const crashed = runs[0] as number;
    expect(e.engineId).toBe(crashed);
    expect(ar.metadata[0]!.attempts).toBe(1);
    await waitFor(() => resets.includes(crashed), { what: `an engine_reset notice for engine ${crashed}` });
    // No engine died: the same ids, each serving; only the crashed one lost its namespace.
    expect(rc.ids).toEqual(ids);
    for (const id of ids) {
      const [kept] = (await rc.engine(id).apply(() => [typeof (globalThis as Record<string, unknown>)["kept"]])) as [
        string,
      ];
      expect(kept).toBe(id === crashed ? "undefined" : "string");
      if (id !== crashed) expect(await rc.engine(id).pull("kept")).toBe("value");
    }
    expect(resets).toEqual([crashed]);
  });

  it("process.abort() ends only the executor thread, not the engine process: TaskCrashedError after one attempt", async () => {
    const { rc } = ctx;
    const ids = rc.ids;
    const log = join(scratchDir(ctx.dir, "abort-"), "runs.log");
    const ar = rc.loadBalancedView().apply((file: string) => {
      require("node:fs").appendFileSync(file, `${engine.id}\n`);
      process.abort();
    }, log);
    const err = await failure(() => ar);
    expect(err).toBeInstanceOf(TaskCrashedError);
    expect((err as TaskCrashedError).message).toMatch(/process\.abort\(\)/);
    expect(runsIn(log)).toHaveLength(1);
    expect(ar.metadata[0]!.attempts).toBe(1);
    for (const pid of ctx.cluster.enginePids) expect(pidAlive(pid)).toBe(true);
    expect(rc.ids).toEqual(ids);
    expect(await rc.view().apply(() => engine.id)).toEqual(ids);
  });

  it("with retries: 1 it runs once more, on another engine, then fails with TaskCrashedError", async () => {
    const { rc } = ctx;
    const log = join(scratchDir(ctx.dir, "retry-"), "runs.log");
    const ar = rc.loadBalancedView().with({ retries: 1 }).apply(exitTask, log);
    const err = await failure(() => ar);
    expect(err).toBeInstanceOf(TaskCrashedError);
    const runs = runsIn(log);
    expect(runs).toHaveLength(2);
    expect(runs[0]).not.toBe(runs[1]);
    expect((err as TaskCrashedError).engineId).toBe(runs[1]);
    expect(ar.metadata[0]!.attempts).toBe(2);
    expect(rc.ids).toHaveLength(3);
    expect(await rc.view().apply(() => engine.id)).toEqual(rc.ids);
  });
});

// Off-heap memory (Buffers) is bounded like the heap: the supervisor replaces an executor over the limit.
// (Its engine runs two tasks at once, for the last test.)
describe("memory is bounded off the heap", () => {
  const ctx = useCluster({
    n: 1,
    dir: tmp.dir,
    profile: "memory",
    extra: ["--max-memory", "200", "--concurrency", "2"],
  });

  /**
   * Fills Buffers, kept alive, 16 MB at a time. Bounded: it stops at 1.5 GB and returns, so a
   * watch that failed could never take the machine's memory.
   */
  const hoard = (): number => {
    const kept: Buffer[] = [];
    let total = 0;
    while (total < 1536 * 2 ** 20) {
      kept.push(Buffer.alloc(16 * 2 ** 20, 1));
      total += 16 * 2 ** 20;
    }
    return kept.length;
  };

  it("a task that fills Buffers past --max-memory fails with ResourceLimitError naming the limit; the engine serves the next task", async () => {
    const { rc } = ctx;
    const resets = resetsOf(rc);
    const pid = await rc.engine(0).apply(() => engine.pid);
    await rc.engine(0).push({ before: 1 });
    const err = await failure(() => rc.engine(0).apply(hoard));
    expect(err).toBeInstanceOf(ResourceLimitError);
    const e = err as ResourceLimitError;
    expect(e.code).toBe("ERR_PTC_OUT_OF_MEMORY");
    expect(e.engineId).toBe(0);
    expect(e.message).toMatch(/limit of 200 MB/);
    expect(e.message).toMatch(/--max-memory/);
    await waitFor(() => resets.includes(0), { what: "an engine_reset notice" });
    expect(
      await rc.engine(0).apply(() => [engine.id, engine.pid, typeof (globalThis as { before?: number }).before]),
    ).toEqual([0, pid, "undefined"]);
    // Load-balanced, without retries: one attempt, the same error.
    const ar = rc.loadBalancedView().apply(hoard);
    expect(await failure(() => ar)).toBeInstanceOf(ResourceLimitError);
    expect(ar.metadata[0]!.attempts).toBe(1);
    expect(await rc.loadBalancedView().apply(() => 42)).toBe(42);
  });

  it("of two tasks sharing an executor, the one that calls process.exit crashed; the other fails as collateral (EngineLostError)", async () => {
    const { rc } = ctx;
    const marker = join(scratchDir(ctx.dir, "pair-"), "started");
    const bystander = rc.engine(0).apply(async (file: string) => {
      require("node:fs").writeFileSync(file, "");
      await new Promise((r) => setTimeout(r, 30_000));
      return "finished";
    }, marker);
    await waitFor(() => existsSync(marker), { what: "the bystander task to start" });
    const crash = await failure(() => rc.engine(0).apply(() => process.exit(3)));
    expect(crash).toBeInstanceOf(TaskCrashedError);
    expect((crash as Error).message).toMatch(/process\.exit\(3\)/);
    const other = await failure(() => bystander);
    expect(other).toBeInstanceOf(EngineLostError);
    expect((other as Error).message).toMatch(/another task on it/);
    expect(await rc.engine(0).apply(() => engine.id)).toBe(0);
  });
});

// A native crash (a fatal signal such as SIGSEGV, here sent by the task to its own process) takes
// the engine process down with its executor thread; its local launcher sees the signal, so the
// task fails alone rather than killing engine after engine as it is re-run.
describe("a native crash of an engine stays in its task", () => {
  const ctx = useCluster({ n: 2, dir: tmp.dir, profile: "native" });

  it("a load-balanced task whose engine dies of SIGSEGV fails with TaskCrashedError after one attempt; the other engine lives on", async () => {
    const { rc } = ctx;
    const log = join(scratchDir(ctx.dir, "segv-"), "runs.log");
    const ar = rc.loadBalancedView().apply((file: string) => {
      require("node:fs").appendFileSync(file, `${engine.id}\n`);
      process.kill(process.pid, "SIGSEGV");
      return "survived";
    }, log);
    const err = await failure(() => ar);
    expect(err).toBeInstanceOf(TaskCrashedError);
    expect((err as TaskCrashedError).message).toMatch(/SIGSEGV/);
    const runs = runsIn(log);
    expect(runs).toHaveLength(1);
    const [crashed] = runs as [number];
    const survivor = ctx.cluster.ids.find((id) => id !== crashed) as number;
    await waitFor(() => !rc.ids.includes(crashed), { what: `engine ${crashed} to be gone` });
    expect(rc.ids).toEqual([survivor]);
    expect(await rc.loadBalancedView().apply(() => engine.id)).toBe(survivor);
  });
});
