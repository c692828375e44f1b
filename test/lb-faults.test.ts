import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { EngineLostError, type Client, type EngineInfo } from "@ptcluster/client";
import { startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { range, waitFor } from "./helpers/wait.js";
import { failure, lines, reapLeftovers, scratchDir, spawnEngine } from "./helpers/lb.js";

// Set through `scope`; declared for the type checker only.
declare const wd: string;

describe("task farming when engines die or join", () => {
  const tmp = tempClusterDir();
  /** 6 engines: one is killed mid-map, then a poison task kills 4 more. */
  let faults: TestCluster;
  /** 1 engine; another joins during a map. */
  let joinable: TestCluster;
  let rc: Client;
  let rcj: Client;
  let extra: ReturnType<typeof spawnEngine> | undefined;
  const downs: Array<{ id: number; reason: string }> = [];

  const started: TestCluster[] = [];
  const start = (o: Parameters<typeof startTestCluster>[1]) =>
    startTestCluster(tmp.dir, o).then((c) => (started.push(c), c));

  beforeAll(async () => {
    [faults, joinable] = await Promise.all([start({ n: 6, profile: "faults" }), start({ n: 1, profile: "join" })]);
    [rc, rcj] = await Promise.all([faults.connect(), joinable.connect()]);
    rc.on("engine_down", (d) => downs.push(d));
  });

  afterAll(async () => {
    await rc?.close();
    await rcj?.close();
    const errors: unknown[] = [];
    for (const c of started) await c.stop().catch((e: unknown) => errors.push(e));
    // The engine started by hand registered with the "join" controller, which tells it to stop too.
    await extra?.stop().catch((e: unknown) => errors.push(e));
    const left = await reapLeftovers(tmp.dir);
    tmp.cleanup();
    expect(left).toEqual([]);
    if (errors.length) throw errors[0];
  });

  it("an engine killed with SIGKILL in the middle of a map: every result arrives exactly once, in order; its tasks re-run elsewhere", async () => {
    expect(rc.ids).toEqual(range(6));
    const dir = scratchDir(tmp.dir, "kill-");
    const N = 60;
    const task = async (i: number) => {
      const fs = require("node:fs") as typeof import("node:fs");
      const file = `${wd}/item-${i}`;
      fs.appendFileSync(file, `${engine.id} ${process.pid}\n`);
      if (i === 20 && fs.readFileSync(file, "utf8").split("\n").filter(Boolean).length === 1) {
        // The first run of item 20 holds its engine until the test kills it.
        const until = Date.now() + 10_000;
        while (Date.now() < until) await new Promise((r) => setTimeout(r, 5));
        throw new Error("the engine running item 20 was never killed");
      }
      await new Promise((r) => setTimeout(r, 10));
      return i * 2;
    };
    const m = rc.loadBalancedView().map(task, range(N), { chunkSize: 1, scope: { wd: dir } });
    const first = await waitFor(() => lines(join(dir, "item-20"))[0], { what: "item 20 to start" });
    const [victim, victimPid] = first.split(" ").map(Number) as [number, number];
    expect(rc.engineInfo(victim)?.pid).toBe(victimPid);
    process.kill(victimPid, "SIGKILL");

    const out: number[] = [];
    for await (const v of m) out.push(v);
    expect(out).toEqual(range(N).map((i) => i * 2));

    // Executions: every item ran; an item ran twice only because its first engine was the one killed.
    for (const i of range(N)) {
      const runs = lines(join(dir, `item-${i}`)).map((l) => Number(l.split(" ")[0]));
      expect(runs.length, `runs of item ${i}`).toBeGreaterThanOrEqual(1);
      expect(runs.length, `runs of item ${i}`).toBeLessThanOrEqual(2);
      if (runs.length === 2) {
        expect(runs[0]).toBe(victim);
        expect(runs[1]).not.toBe(victim);
      }
    }
    expect(lines(join(dir, "item-20"))).toHaveLength(2);
    // One metadata entry per chunk; the chunk that lost its engine was attempted twice.
    expect(m.metadata).toHaveLength(N);
    expect(m.metadata.every((x) => x.status === "ok")).toBe(true);
    const moved = m.metadata.filter((x) => x.attempts > 1);
    expect(moved.length).toBeGreaterThanOrEqual(1);
    for (const x of moved) {
      expect(x.attempts).toBe(2);
      expect(x.engineId).not.toBe(victim);
    }
    await waitFor(() => downs.some((d) => d.id === victim), { what: `engine_down for engine ${victim}` });
    expect(rc.ids).not.toContain(victim);
    for (const id of range(6).filter((id) => id !== victim)) expect(rc.ids).toContain(id);
  });

  it("a task that kills its engine every time fails with EngineLostError after killing 3 + 1 engines; the others keep working", async () => {
    const before = rc.ids;
    expect(before.length).toBeGreaterThanOrEqual(5);
    const dir = scratchDir(tmp.dir, "poison-");
    const log = join(dir, "poison.log");
    const ar = rc.loadBalancedView().apply((file: string) => {
      require("node:fs").appendFileSync(file, `${engine.id}\n`);
      process.kill(process.pid, "SIGKILL");
      return "unreachable";
    }, log);
    const err = await failure(() => ar);
    expect(err).toBeInstanceOf(EngineLostError);
    const e = err as EngineLostError;
    expect(e.code).toBe("ERR_PTC_ENGINE_LOST");
    const killed = lines(log).map(Number);
    expect(killed).toHaveLength(4);
    expect(new Set(killed).size).toBe(4);
    for (const id of killed) expect(before).toContain(id);
    expect(e.engineId).toBe(killed[3]);
    expect(ar.metadata[0]!.attempts).toBe(4);
    await waitFor(() => killed.every((id) => !rc.ids.includes(id)), { what: "the killed engines to be reported down" });
    for (const id of before.filter((id) => !killed.includes(id))) expect(rc.ids).toContain(id);
    expect(await rc.loadBalancedView().map((x: number) => x + engine.id * 0, range(10))).toEqual(range(10));
  });

  it("an engine that joins during a map receives work from it", async () => {
    expect(rcj.ids).toEqual([0]);
    const dir = scratchDir(tmp.dir, "join-");
    const task = async (i: number) => {
      const fs = require("node:fs") as typeof import("node:fs");
      // Every item waits for the gate, which opens once the new engine has registered.
      const until = Date.now() + 15_000;
      while (!fs.existsSync(`${wd}/gate`)) {
        if (Date.now() > until) throw new Error("gate never opened");
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, 20));
      return { i, engine: engine.id };
    };
    const m = rcj.loadBalancedView().map(task, range(30), { chunkSize: 1, scope: { wd: dir } });
    const up = new Promise<EngineInfo>((resolve) => rcj.once("engine_up", resolve));
    extra = spawnEngine(tmp.dir, "join");
    const ids = await rcj.waitForEngines(2, { timeout: 20_000 }).catch((err: Error) => {
      throw new Error(`${err.message}\nengine output: ${extra?.output()}`);
    });
    const joined = await up;
    expect(ids).toEqual([0, joined.id]);
    expect(joined.pid).toBe(extra.child.pid);
    expect(joined.id).not.toBe(0);
    writeFileSync(join(dir, "gate"), "");
    const out = await m;
    expect(out.map((r) => r.i)).toEqual(range(30));
    const onNew = out.filter((r) => r.engine === joined.id).length;
    expect(onNew).toBeGreaterThanOrEqual(1);
    expect(new Set(out.map((r) => r.engine))).toEqual(new Set([0, joined.id]));
    expect(rcj.ids).toEqual([0, joined.id]);
  });
});
